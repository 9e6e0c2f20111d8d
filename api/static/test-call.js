/* The test-call page: the API key typed in the page mints a session token. */
(function () {
  "use strict";
  const agent = document.body.dataset.agent;
  document.getElementById("agent-id").textContent = agent;
  const params = new URLSearchParams(location.search);
  async function getToken(agentId) {
    const key = document.getElementById("api-key").value.trim();
    if (!key) throw new Error("enter an API key first");
    const response = await fetch("/api/v1/sessions", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + key },
      body: JSON.stringify({ agent_id: agentId }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.detail || "session refused: " + response.status);
    return body;
  }
  window.voxlineTest = window.Voxline.mount(document.getElementById("widget"), {
    agent,
    getToken,
    server: location.origin,
    label: "Start test call",
    // ?raw_audio=1: no echo cancellation / noise suppression / AGC (automated tests).
    audioProcessing: params.get("raw_audio") !== "1",
  });
})();
