/*
 * voxline web voice widget. One tag adds a call button to any page:
 *
 *   <script src="https://voice.example.com/widget.js"
 *           data-agent="agt_..." data-token-url="/voxline-token"></script>
 *
 * data-token-url is YOUR backend: it receives POST {"agent_id"} and answers with
 * what voxline's POST /api/v1/sessions returned ({"token", ...}), calling it
 * with your API key server-side, so the key never reaches the page.
 * Optional: data-label (button text), data-target (CSS selector to mount into).
 *
 * Also usable from code: window.Voxline.mount(element, {agent, getToken, server}).
 * Plain script, no build step, no third-party code; ICE servers come from the
 * session (none by default), so a call contacts nothing but this server.
 */
(function () {
  "use strict";

  const SCRIPT = document.currentScript;
  const DEFAULT_SERVER = SCRIPT && SCRIPT.src ? new URL(SCRIPT.src).origin : location.origin;
  // Non-trickle signalling: the offer goes out once gathering completes, or after
  // this long with what was gathered (a browser with no usable candidate type
  // would otherwise wait forever).
  const GATHER_TIMEOUT_MS = 3000;

  function waitForGathering(pc, timeoutMs) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      };
      const check = () => { if (pc.iceGatheringState === "complete") done(); };
      const timer = setTimeout(done, timeoutMs);
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  /** One call: microphone up, agent audio down, live events on a data channel.
   *  Events: "state" {state}, "message" {message}, "stream" {stream}, "ended" {reason}. */
  class VoxlineCall extends EventTarget {
    constructor(options) {
      super();
      this.server = options.server || DEFAULT_SERVER;
      this.agent = options.agent;
      this.getToken = options.getToken;
      this.audioProcessing = options.audioProcessing !== false;
      this.pc = null;
      this.mic = null;
      this.channel = null;
      this.callId = null;
      this.state = "idle";
      this.audio = new Audio();
      this.audio.autoplay = true;
    }

    _emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

    _setState(state) {
      if (state === this.state) return;
      this.state = state;
      this._emit("state", { state });
    }

    async start() {
      if (this.pc) return;
      this._setState("connecting");
      try {
        const session = await this.getToken(this.agent);
        // Echo cancellation keeps the agent's voice (from the speakers) out of the
        // microphone; the test page turns processing off for a faithful fake mic.
        const p = this.audioProcessing;
        this.mic = await navigator.mediaDevices.getUserMedia({
          audio: { echoCancellation: p, noiseSuppression: p, autoGainControl: p },
        });
        const pc = new RTCPeerConnection({ iceServers: session.ice_servers || [] });
        this.pc = pc;
        this.channel = pc.createDataChannel("events");
        this.channel.onmessage = (e) => this._onMessage(e.data);
        for (const track of this.mic.getAudioTracks()) pc.addTrack(track, this.mic);
        pc.ontrack = (e) => {
          const stream = e.streams[0] || new MediaStream([e.track]);
          this.audio.srcObject = stream;
          this._emit("stream", { stream });
        };
        pc.onconnectionstatechange = () => {
          if (pc.connectionState === "failed") this.stop("connection_failed");
        };
        await pc.setLocalDescription(await pc.createOffer());
        await waitForGathering(pc, GATHER_TIMEOUT_MS);
        const response = await fetch(this.server + "/webrtc/offer", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({
            sdp: pc.localDescription.sdp, type: "offer", token: session.token,
          }),
        });
        const answer = await response.json();
        if (!response.ok) throw new Error(answer.detail || "offer refused: " + response.status);
        this.callId = answer.call_id;
        await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
        this._setState("listening");
      } catch (err) {
        this.stop("error: " + (err && err.message ? err.message : err));
        throw err;
      }
    }

    _onMessage(data) {
      let message;
      try { message = JSON.parse(data); } catch (_) { return; }
      this._emit("message", { message });
      if (message.type === "state" && message.state !== "ended") this._setState(message.state);
      if (message.type === "call_ended") this.stop(message.reason);
    }

    stop(reason) {
      if (!this.pc && !this.mic) return;
      if (this.channel && this.channel.readyState === "open") {
        try { this.channel.send(JSON.stringify({ type: "hangup" })); } catch (_) { /* closing */ }
      }
      const pc = this.pc;
      this.pc = null;
      // Give the hangup message a moment to leave before the transport closes.
      setTimeout(() => { if (pc) pc.close(); }, 200);
      if (this.mic) this.mic.getTracks().forEach((t) => t.stop());
      this.mic = null;
      this._setState("idle");
      this._emit("ended", { reason: reason || "caller_hangup", callId: this.callId });
    }
  }

  const STYLE = `
    :host { all: initial; font: 14px/1.4 system-ui, sans-serif; color: #1d2330; }
    .box { display: inline-flex; flex-direction: column; gap: 8px; max-width: 320px; }
    button { display: inline-flex; align-items: center; gap: 8px; border: 0; border-radius: 22px;
             padding: 10px 18px; background: #1f6feb; color: #fff; font: inherit; cursor: pointer; }
    button.live { background: #d1242f; }
    .dot { width: 10px; height: 10px; border-radius: 50%; background: #9aa4b2; }
    .dot.listening { background: #2da44e; }
    .dot.thinking { background: #bf8700; }
    .dot.speaking { background: #2da44e; animation: pulse .6s infinite alternate; }
    @keyframes pulse { to { transform: scale(1.6); } }
    .status { font-size: 12px; color: #57606a; }
    .log { max-height: 180px; overflow-y: auto; font-size: 13px; }
    .log p { margin: 2px 0; } .log .agent { color: #0550ae; } .log .partial { opacity: .6; }
  `;

  /** A call button with a speaking indicator and a live transcript, in a shadow root. */
  function mount(element, options) {
    const root = element.attachShadow ? element.attachShadow({ mode: "open" }) : element;
    root.innerHTML = `<style>${STYLE}</style><div class="box">
      <button type="button" part="button"><span class="dot"></span>
        <span class="label"></span></button>
      <div class="status" aria-live="polite"></div><div class="log"></div></div>`;
    const button = root.querySelector("button");
    const dot = root.querySelector(".dot");
    const label = root.querySelector(".label");
    const status = root.querySelector(".status");
    const log = root.querySelector(".log");
    const idleLabel = options.label || "Talk to us";
    label.textContent = idleLabel;
    let partial = null;

    const call = new VoxlineCall(options);
    const line = (cls, text) => {
      const p = document.createElement("p");
      p.className = cls;
      p.textContent = text;
      log.appendChild(p);
      log.scrollTop = log.scrollHeight;
      return p;
    };
    call.addEventListener("state", (e) => {
      const s = e.detail.state;
      dot.className = "dot " + s;
      status.textContent = s === "idle" ? "" : s === "connecting" ? "Connecting…" : s;
      button.classList.toggle("live", s !== "idle");
      label.textContent = s === "idle" ? idleLabel : "End call";
    });
    call.addEventListener("message", (e) => {
      const m = e.detail.message;
      if (m.type !== "transcript") return;
      if (m.role === "user" && !m.final) {
        partial = partial || line("user partial", "");
        partial.textContent = "You: " + m.text;
        return;
      }
      if (m.role === "user") {
        if (partial) partial.remove();
        partial = null;
        line("user", "You: " + m.text);
      } else {
        line("agent", "Agent: " + m.text);
      }
    });
    call.addEventListener("ended", (e) => {
      status.textContent = "Call ended (" + e.detail.reason + ")";
    });
    button.addEventListener("click", () => {
      if (call.state === "idle") {
        call.start().catch((err) => { status.textContent = String(err.message || err); });
      } else {
        call.stop("caller_hangup");
      }
    });
    return { call, root };
  }

  function tokenFromUrl(url) {
    return async (agent) => {
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ agent_id: agent }),
      });
      if (!response.ok) throw new Error("token request failed: " + response.status);
      return response.json();
    };
  }

  window.Voxline = { VoxlineCall, mount, tokenFromUrl };

  if (SCRIPT && SCRIPT.dataset.agent && SCRIPT.dataset.tokenUrl) {
    const target = SCRIPT.dataset.target && document.querySelector(SCRIPT.dataset.target);
    const host = target || document.createElement("div");
    if (!target) SCRIPT.insertAdjacentElement("afterend", host);
    window.Voxline.widget = mount(host, {
      agent: SCRIPT.dataset.agent,
      getToken: tokenFromUrl(SCRIPT.dataset.tokenUrl),
      label: SCRIPT.dataset.label,
    });
  }
})();
