// Active calls: a card per live call, its transcript streaming in from the feed.
import { api, el } from "./api.js";

const FINAL = new Set(["completed", "busy", "no_answer", "failed", "cancelled", "voicemail"]);

export class ActiveCalls {
  constructor(root, empty, count) {
    this.root = root;
    this.empty = empty;
    this.count = count;
    this.calls = new Map(); // call_id -> {card, lines, partial, state, status}
  }

  async load() {
    // Calls already live when the page opened; the feed tells the rest.
    for (const status of ["in_progress", "ringing", "queued"]) {
      const page = await api.get(`/api/v1/calls?status=${status}&limit=50`);
      for (const call of page.data) this.#ensure(call.id, call);
    }
    this.#refresh();
  }

  handle(event) {
    const id = event.call_id;
    if (!id) return;
    if (event.type === "call.started" || event.type === "call.status") {
      if (FINAL.has(event.status)) return this.#end(id, event.status);
      const call = this.#ensure(id, event);
      call.status = event.status;
      call.statusPill.textContent = event.status.replace("_", " ");
      call.statusPill.className = `pill s-${event.status}`;
    } else if (event.type === "call.ended") {
      this.#end(id, event.status);
    } else if (event.type === "transcript") {
      const call = this.#ensure(id, event);
      this.#transcript(call, event);
    } else if (event.type === "call.state") {
      const call = this.calls.get(id);
      if (call) call.state.textContent = event.state;
    } else if (event.type === "turn.latency") {
      const call = this.calls.get(id);
      if (call && event.stages_ms.response !== undefined) {
        call.latency.textContent = `last response ${Math.round(event.stages_ms.response)} ms`;
      }
    }
    this.#refresh();
  }

  #ensure(id, info) {
    let call = this.calls.get(id);
    if (call) return call;
    const statusPill = el("span", { class: `pill s-${info.status || "in_progress"}` },
      (info.status || "in progress").replace("_", " "));
    const state = el("span", { class: "state" }, "");
    const latency = el("span", { class: "state" }, "");
    const lines = el("div", { class: "transcript" });
    const hangup = el("button", { type: "button", onclick: () => api.post(`/api/v1/calls/${id}/hangup`).catch(() => {}) }, "Hang up");
    const card = el("div", { class: "card call-card", "data-call-id": id },
      el("div", { class: "row" },
        el("h3", {}, info.to_number || info.from_number || id), statusPill, el("span", { class: "spacer" }), hangup),
      el("div", { class: "row" }, el("span", { class: "muted" }, `${info.direction || ""} ${id}`), state, latency),
      lines);
    call = { card, lines, partial: null, state, latency, statusPill, status: info.status };
    this.calls.set(id, call);
    this.root.prepend(card);
    return call;
  }

  #transcript(call, event) {
    const role = event.role === "agent" ? "agent" : "user";
    if (role === "user" && !event.final) {
      if (!call.partial) {
        call.partial = el("div", { class: "line user partial" });
        call.lines.append(call.partial);
      }
      call.partial.replaceChildren(el("span", { class: "who" }, "caller (hearing)"), event.text);
    } else {
      if (role === "user" && call.partial) {
        call.partial.remove();
        call.partial = null;
      }
      call.lines.append(el("div", { class: `line ${role} final` },
        el("span", { class: "who" }, role === "agent" ? "agent" : "caller"), event.text));
    }
    call.lines.scrollTop = call.lines.scrollHeight;
  }

  #end(id, status) {
    const call = this.calls.get(id);
    if (!call) return;
    call.statusPill.textContent = status;
    call.statusPill.className = `pill s-${status}`;
    // Keep the finished card a moment so its last words can be read.
    setTimeout(() => { call.card.remove(); this.calls.delete(id); this.#refresh(); }, 8000);
  }

  #refresh() {
    const live = [...this.calls.values()].filter((c) => !FINAL.has(c.statusPill.textContent));
    this.count.textContent = `(${live.length})`;
    this.empty.hidden = this.calls.size > 0;
  }
}
