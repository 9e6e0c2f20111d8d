// Agent editor: the organization's agents, one agent's flow, tools and web search as
// forms (or raw JSON), its versions. Save PUTs the whole spec, so every save is a new
// version; the server's 422 errors are listed and each is also shown beside its field.
import { ApiError, api, el, fmtTime } from "./api.js";
import { flowForm, refineFlowPath, toolsForm } from "./agent_forms.js";

const TEMPLATE = {
  name: "New agent",
  prompt: { identity: "You are a friendly receptionist.", style: "One short sentence at a time." },
  welcome_message: "Hello, how can I help?",
  end_call: { max_duration_s: 300, silence_timeout_s: 15 },
};

const pretty = (value) => JSON.stringify(value, null, 2);

export class AgentEditor {
  constructor(dom) {
    // {list, title, name, json, flowJson, flowForm, flowRaw, flowModes, tools, tabs,
    //  panels, versions, errors, save, saved, newButton, testCall}
    this.dom = dom;
    this.current = null; // the open agent's id (null: a new, unsaved agent)
    this.version = null;
    this.spec = structuredClone(TEMPLATE); // the working copy every form writes into
    this.tab = "flow";
    this.flowMode = "structured";
    // What each raw JSON box was last filled with: a box whose text differs was edited,
    // and what was typed there last wins over the forms.
    this.shown = { json: null, flow: null };
    this.ctx = { invalid: new Map(), rerender: () => this.render(), changed: () => this.dirty() };
    dom.save.addEventListener("click", () => this.save());
    dom.newButton.addEventListener("click", () => this.open(null));
    for (const button of dom.tabs) button.addEventListener("click", () => this.showTab(button.dataset.tab));
    for (const radio of dom.flowModes) radio.addEventListener("change", () => this.setFlowMode(radio.value));
  }

  async load() {
    const agents = await api.get("/api/v1/agents");
    this.dom.list.replaceChildren(...agents.map((a) =>
      el("li", { "data-agent-id": a.id, class: this.current === a.id ? "selected" : "",
        onclick: () => this.open(a) }, `${a.spec.name} `, el("span", { class: "muted" }, `v${a.version}`))));
    if (!this.current && agents.length) this.open(agents[0]);
    else if (!agents.length) this.open(null);
  }

  open(agent) {
    this.current = agent ? agent.id : null;
    this.version = agent ? agent.version : null;
    this.spec = structuredClone(agent ? agent.spec : TEMPLATE);
    for (const li of this.dom.list.children) li.classList.toggle("selected", li.dataset.agentId === this.current);
    this.dom.title.textContent = agent ? `${agent.spec.name} (v${agent.version})` : "New agent";
    this.clearErrors();
    this.dom.saved.textContent = "";
    this.dom.testCall.hidden = !agent;
    if (agent) this.dom.testCall.href = `/test-call/${agent.id}`;
    this.render();
    this.fillJson();
    if (this.tab === "versions") this.loadVersions();
  }

  // Draw every form from the working copy (all panels, so an error can find its field
  // in a panel that is not showing).
  render() {
    this.ctx.invalid.clear();
    const name = el("input", { type: "text", id: "agent-name" });
    name.value = this.spec.name ?? "";
    name.addEventListener("input", () => { this.spec.name = name.value; this.dirty(); });
    this.dom.name.replaceChildren(el("label", { class: "field wide", "data-path": "name" }, el("span", {}, "name"), name));
    const raw = this.flowMode === "raw";
    this.dom.flowForm.hidden = raw;
    this.dom.flowRaw.hidden = !raw;
    this.dom.flowForm.replaceChildren(raw ? "" : flowForm(this.spec, this.ctx));
    if (raw) {
      this.dom.flowJson.value = this.spec.flow ? pretty(this.spec.flow) : "";
      this.shown.flow = this.dom.flowJson.value;
    }
    this.dom.tools.replaceChildren(toolsForm(this.spec, this.ctx));
  }

  fillJson() {
    this.dom.json.value = pretty(this.spec);
    this.shown.json = this.dom.json.value;
  }

  dirty() {
    this.dom.saved.textContent = "unsaved changes";
  }

  // Take in a raw JSON box that was edited since it was filled. Throws {path, msg} when
  // its text does not parse.
  absorbRaw() {
    let changed = false;
    if (this.dom.json.value !== this.shown.json) {
      let spec;
      try {
        spec = JSON.parse(this.dom.json.value);
      } catch (e) {
        throw { path: "", msg: `JSON: ${e.message}` };
      }
      this.spec = spec;
      this.shown.json = this.dom.json.value;
      changed = true;
    }
    if (this.flowMode === "raw" && this.dom.flowJson.value !== this.shown.flow) {
      const text = this.dom.flowJson.value.trim();
      try {
        this.spec.flow = text ? JSON.parse(text) : null;
      } catch (e) {
        throw { path: "flow", msg: `not valid JSON: ${e.message}` };
      }
      this.shown.flow = this.dom.flowJson.value;
      changed = true;
    }
    if (changed) this.render();
  }

  // Every view change first takes in what was typed, or stays put and says why.
  absorbOrShow() {
    try {
      this.absorbRaw();
      return true;
    } catch (e) {
      this.showErrors([e]);
      return false;
    }
  }

  showTab(tab) {
    if (tab === this.tab || !this.absorbOrShow()) return;
    this.tab = tab;
    for (const button of this.dom.tabs) button.classList.toggle("active", button.dataset.tab === tab);
    for (const panel of this.dom.panels) panel.hidden = panel.dataset.panel !== tab;
    if (tab === "json") this.fillJson();
    if (tab === "versions") this.loadVersions();
  }

  setFlowMode(mode) {
    if (!this.absorbOrShow()) {
      for (const radio of this.dom.flowModes) radio.checked = radio.value === this.flowMode;
      return;
    }
    this.flowMode = mode;
    this.render();
  }

  async save() {
    this.clearErrors();
    if (!this.absorbOrShow()) return;
    if (this.ctx.invalid.size) {
      this.showErrors([...this.ctx.invalid].map(([path, msg]) => ({ path, msg })));
      return;
    }
    try {
      const saved = this.current
        ? await api.put(`/api/v1/agents/${this.current}`, this.spec)
        : await api.post("/api/v1/agents", this.spec);
      this.current = saved.id;
      await this.load();
      this.open(saved);
      this.dom.saved.textContent = `saved as version ${saved.version}`;
    } catch (e) {
      const items = e instanceof ApiError ? e.fieldErrors : [{ path: "", msg: e.message }];
      this.showErrors(items.map((f) => ({ path: f.path.replace(/^body\.?/, ""), msg: f.msg })));
    }
  }

  clearErrors() {
    this.dom.errors.replaceChildren();
    for (const node of document.querySelectorAll("#view-agents .field-error")) node.remove();
    for (const button of this.dom.tabs) button.classList.remove("has-error");
  }

  // [{path: "flow.nodes.0.say", msg}]: listed under the editor, and each beside the
  // closest field that holds it (the field itself, else its node, else its section).
  showErrors(items) {
    this.clearErrors();
    this.dom.errors.replaceChildren(...items.map((f) =>
      el("li", { "data-field": f.path }, f.path ? el("code", {}, f.path) : null, f.path ? ": " : "", f.msg)));
    // Hidden tabs still count (their button is marked); the raw flow box only while showing.
    const holders = [...document.querySelectorAll("#view-agents [data-path]")]
      .filter((n) => this.flowMode === "raw" || !this.dom.flowRaw.contains(n));
    for (const f of items) {
      const path = refineFlowPath(f.path, f.msg, this.spec.flow);
      const holder = closestHolder(holders, path);
      if (!holder) continue;
      const note = el("div", { class: "field-error", role: "alert", "data-error-for": path }, f.msg.replace(/^Value error, /, ""));
      if (holder.tagName === "LABEL") holder.append(note);
      else holder.insertBefore(note, holder.tagName === "FIELDSET" ? holder.children[1] || null : holder.firstChild);
    }
    for (const button of this.dom.tabs) {
      const panel = this.dom.panels.find((p) => p.dataset.panel === button.dataset.tab);
      button.classList.toggle("has-error", !!panel.querySelector(".field-error"));
    }
  }

  async loadVersions() {
    if (!this.current) {
      this.dom.versions.replaceChildren(el("li", { class: "muted" }, "Save the agent first."));
      return;
    }
    const id = this.current;
    const versions = await api.get(`/api/v1/agents/${id}/versions`);
    if (id !== this.current) return; // another agent was opened meanwhile
    this.dom.versions.replaceChildren(...versions.map((v) => {
      const current = v.version === this.version;
      return el("li", { "data-version": v.version, class: current ? "selected" : "" },
        el("strong", {}, `v${v.version}`), " ", el("span", { class: "muted" }, fmtTime(v.created_at)),
        ` ${v.spec.name} `,
        current ? el("span", { class: "muted" }, "(current)")
          : el("button", { type: "button", class: "small", "data-restore": v.version,
            onclick: () => this.restore(v.version) }, "Restore"));
    }));
  }

  // Restoring saves the old spec as a new version (the server keeps the history).
  async restore(version) {
    try {
      const restored = await api.post(`/api/v1/agents/${this.current}/versions/${version}/restore`);
      await this.load();
      this.open(restored);
      this.dom.saved.textContent = `restored version ${version} as version ${restored.version}`;
    } catch (e) {
      this.showErrors([{ path: "", msg: e.message }]);
    }
  }
}

function closestHolder(holders, path) {
  let best = null;
  for (const node of holders) {
    const p = node.dataset.path;
    if ((p === path || path.startsWith(`${p}.`)) && (!best || p.length > best.dataset.path.length)) best = node;
  }
  return best;
}
