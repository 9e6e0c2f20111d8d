// Call log: cursor pages, a call's transcript, recording and latency waterfall.
import { api, el, fmtTime } from "./api.js";
import { waterfall } from "./latency.js";

export class CallLog {
  constructor(table, more, detail, statusSelect) {
    this.tbody = table.querySelector("tbody");
    this.more = more;
    this.detail = detail;
    this.statusSelect = statusSelect;
    this.cursor = null;
    this.recordingUrl = null;
    more.addEventListener("click", () => this.load(false));
  }

  async load(reset = true) {
    if (reset) {
      this.tbody.replaceChildren();
      this.cursor = null;
    }
    const params = new URLSearchParams({ limit: "25" });
    if (this.statusSelect.value) params.set("status", this.statusSelect.value);
    if (this.cursor) params.set("cursor", this.cursor);
    const page = await api.get(`/api/v1/calls?${params}`);
    for (const call of page.data) {
      const row = el("tr", { "data-call-id": call.id, onclick: () => this.show(call.id, row) },
        el("td", {}, fmtTime(call.created_at)),
        el("td", {}, call.to_number || call.from_number),
        el("td", {}, el("span", { class: `pill s-${call.status}` }, call.status)),
        el("td", {}, call.duration_s === null ? "" : `${call.duration_s.toFixed(1)} s`));
      this.tbody.append(row);
    }
    this.cursor = page.next_cursor;
    this.more.hidden = !this.cursor;
  }

  async show(id, row) {
    for (const r of this.tbody.querySelectorAll("tr.selected")) r.classList.remove("selected");
    if (row) row.classList.add("selected");
    const call = await api.get(`/api/v1/calls/${id}`);
    if (this.recordingUrl) URL.revokeObjectURL(this.recordingUrl);
    this.recordingUrl = null;
    const audio = el("audio", { controls: true, id: "recording" });
    if (call.recording_url) {
      api.blobUrl(`/api/v1/calls/${id}/recording`).then((url) => {
        this.recordingUrl = url;
        audio.src = url;
        audio.dataset.loaded = "1";
      }).catch((e) => audio.replaceWith(el("p", { class: "error" }, e.message)));
    }
    const transcript = el("div", { class: "transcript" }, call.transcript.map((line) =>
      el("div", { class: `line ${line.speaker === "agent" ? "agent" : "user"}` },
        el("span", { class: "who" }, `${line.speaker} · ${line.t.toFixed(1)} s`), line.text)));
    this.detail.replaceChildren(...[
      el("div", { class: "row" }, el("h3", {}, call.to_number || call.id),
        el("span", { class: `pill s-${call.status}` }, call.status),
        el("span", { class: "muted" }, call.end_reason || "")),
      el("p", { class: "muted" }, `${call.id} · ${fmtTime(call.created_at)}` +
        (call.duration_s !== null ? ` · ${call.duration_s.toFixed(1)} s` : "")),
      call.summary ? el("p", {}, el("strong", {}, "Summary: "), call.summary) : null,
      call.recording_url ? audio : el("p", { class: "muted" }, "no recording"),
      el("h4", {}, "Latency per turn"),
      el("div", { id: "latency-chart" }, waterfall(call.latency)),
      el("h4", {}, "Transcript"),
      transcript,
    ].filter(Boolean));
    this.detail.hidden = false;
  }
}
