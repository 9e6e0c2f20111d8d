// Campaigns with live progress bars: campaign.progress events from the feed, and a
// live-status poll every few seconds as a fallback while the feed is down.
import { api, el, fmtTime } from "./api.js";

const BUCKETS = ["completed", "busy", "no_answer", "failed", "in_progress"];

export class Campaigns {
  constructor(root, feed) {
    this.root = root;
    this.feed = feed;
    this.rows = new Map();
    setInterval(() => this.#poll(), 3000);
  }

  async load() {
    const list = await api.get("/api/v1/bulk-call");
    this.root.replaceChildren();
    this.rows.clear();
    if (!list.length) this.root.append(el("p", { class: "muted" }, "No campaign yet."));
    for (const c of list) this.#row(c.id, c.name, c.status, c.summary, c.created_at);
  }

  handle(event) {
    if (event.type !== "campaign.progress") return;
    if (!this.rows.has(event.bulk_call_id)) {
      this.root.querySelector("p.muted")?.remove();
      this.#row(event.bulk_call_id, event.name, event.campaign_status, event.summary, null, true);
    } else {
      this.#update(event.bulk_call_id, event.campaign_status, event.summary);
    }
  }

  async #poll() {
    if (this.feed.connected || !this.root.isConnected || this.root.closest("[hidden]")) return;
    for (const [id, row] of this.rows) {
      if (["completed", "cancelled", "failed"].includes(row.status)) continue;
      const s = await api.get(`/api/v1/bulk-call/${id}/live-status`).catch(() => null);
      if (s) this.#update(id, s.campaign_status, s.summary);
    }
  }

  #row(id, name, status, summary, createdAt, first = false) {
    const bar = el("div", { class: "bar", role: "progressbar", "aria-valuemin": "0" });
    const label = el("span", { class: "legend" });
    const pill = el("span", { class: "pill" });
    const controls = el("span", {},
      el("button", { type: "button", onclick: () => this.#act(id, "pause") }, "Pause"), " ",
      el("button", { type: "button", onclick: () => this.#act(id, "resume") }, "Resume"), " ",
      el("button", { type: "button", onclick: () => this.#act(id, "cancel") }, "Cancel"));
    const card = el("div", { class: "card campaign", "data-campaign-id": id },
      el("div", { class: "row" }, el("strong", {}, name || `#${id}`), pill,
        el("span", { class: "muted" }, createdAt ? fmtTime(createdAt) : ""), el("span", { class: "spacer" }), controls),
      bar, label);
    if (first) this.root.prepend(card); else this.root.append(card);
    this.rows.set(id, { card, bar, label, pill, status });
    this.#update(id, status, summary);
  }

  #update(id, status, s) {
    const row = this.rows.get(id);
    if (!row) return;
    row.status = status;
    row.pill.textContent = status;
    row.pill.className = `pill s-${status === "in_progress" ? "in_progress" : status === "completed" ? "completed" : status === "cancelled" ? "cancelled" : "x"}`;
    const total = Math.max(1, s.total_contacts);
    row.bar.replaceChildren(...BUCKETS.map((b) =>
      el("span", { class: `b-${b}`, style: `width:${(100 * s[b]) / total}%`, title: `${b}: ${s[b]}` })));
    const done = s.completed + s.busy + s.no_answer + s.failed;
    row.bar.setAttribute("aria-valuemax", String(s.total_contacts));
    row.bar.setAttribute("aria-valuenow", String(done));
    row.label.textContent = `${done} / ${s.total_contacts} done · ` +
      BUCKETS.map((b) => `${b.replace("_", " ")} ${s[b]}`).join(" · ") + ` · queued ${s.queued}`;
  }

  async #act(id, action) {
    try {
      const c = await api.post(`/api/v1/bulk-call/${id}/${action}`);
      this.#update(id, c.status, c.summary);
    } catch (e) {
      alert(e.message);
    }
  }
}
