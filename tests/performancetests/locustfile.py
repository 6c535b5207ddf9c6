"""Load profile for the prediction service: single predictions, batches and health checks.

uv run invoke load-test                      # starts a local server on embedded defaults
uv run invoke load-test --host http://127.0.0.1:8080 --users 50 --run-time 2m
"""

import random

from locust import HttpUser, between, task

PASSENGERS = [
    {"pclass": 3, "sex": "male", "age": 22, "sibsp": 1, "parch": 0, "fare": 7.25, "embarked": "S"},
    {
        "pclass": 1,
        "sex": "female",
        "age": 38,
        "sibsp": 1,
        "parch": 0,
        "fare": 71.28,
        "embarked": "C",
    },
    {
        "pclass": 2,
        "sex": "female",
        "age": 14,
        "sibsp": 1,
        "parch": 0,
        "fare": 30.07,
        "embarked": "C",
    },
    {"pclass": 3, "sex": "male"},  # optional fields imputed
]


class PredictionUser(HttpUser):
    wait_time = between(0.0, 0.05)

    def on_start(self) -> None:
        # synthetic traffic says so: drift checks on live traffic leave it out
        self.client.headers["X-Traffic-Source"] = "locust"

    @task(10)
    def single(self) -> None:
        with self.client.post(
            "/", json=random.choice(PASSENGERS), name="predict single", catch_response=True
        ) as response:
            if response.status_code != 200 or "predictions" not in response.json():
                response.failure(f"unexpected answer {response.status_code}")

    @task(3)
    def batch(self) -> None:
        body = {"instances": random.choices(PASSENGERS, k=32)}
        with self.client.post(
            "/", json=body, name="predict batch of 32", catch_response=True
        ) as response:
            if response.status_code != 200 or len(response.json()["predictions"]) != 32:
                response.failure(f"unexpected answer {response.status_code}")

    @task(1)
    def health(self) -> None:
        self.client.get("/health", name="health")
