"""Delivery to Google Cloud: deployment files, their rendering, and the commands that apply them.

Nothing here talks to Google Cloud by itself: modules build file contents and command lines
(pure, tested offline); ``tasks.py`` prints them and runs them only with a project configured.
"""
