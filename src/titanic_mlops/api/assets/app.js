// Calls POST / with the form as one named instance; shows the result or the API's error.
"use strict";

const form = document.getElementById("predict-form");
const result = document.getElementById("result");
const errorBox = document.getElementById("error");
const INTEGER_FIELDS = ["pclass"];
const NUMBER_FIELDS = ["age", "sibsp", "parch", "fare"];

function instanceFromForm() {
  const data = new FormData(form);
  const instance = {};
  for (const [name, raw] of data.entries()) {
    const value = String(raw).trim();
    if (value === "") continue; // omitted: the service imputes it like training did
    if (INTEGER_FIELDS.includes(name)) instance[name] = parseInt(value, 10);
    else if (NUMBER_FIELDS.includes(name)) instance[name] = Number(value);
    else instance[name] = value;
  }
  return instance;
}

function showError(message) {
  result.hidden = true;
  errorBox.textContent = message;
  errorBox.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorBox.hidden = true;
  let response;
  try {
    response = await fetch("/", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ instances: [instanceFromForm()] }),
    });
  } catch (err) {
    showError(`The service could not be reached: ${err}`);
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    showError(body.error ? body.error.message : `HTTP ${response.status}`);
    return;
  }
  const prediction = body.predictions[0];
  document.getElementById("probability").textContent =
    `${(prediction.probability * 100).toFixed(1)} %`;
  document.getElementById("verdict").textContent =
    prediction.survived ? "Predicted to survive." : "Predicted not to survive.";
  document.getElementById("model-version").textContent = body.model_version;
  result.hidden = false;
});
