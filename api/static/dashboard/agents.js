// Agent editor: the agent spec as JSON; the server's 422 errors listed per field.
import { ApiError, api, el } from "./api.js";

const TEMPLATE = {
  name: "New agent",
  prompt: { identity: "You are a friendly receptionist.", style: "One short sentence at a time." },
  welcome_message: "Hello, how can I help?",
  end_call: { max_duration_s: 300, silence_timeout_s: 15 },
};

export class AgentEditor {
  constructor(dom) {
    this.dom = dom; // {list, title, json, errors, save, saved, newButton, testCall}
    this.current = null;
    dom.save.addEventListener("click", () => this.save());
    dom.newButton.addEventListener("click", () => this.edit(null));
  }

  async load() {
    const agents = await api.get("/api/v1/agents");
    this.dom.list.replaceChildren(...agents.map((a) =>
      el("li", { "data-agent-id": a.id, class: this.current === a.id ? "selected" : "",
        onclick: () => this.edit(a) }, `${a.spec.name} `, el("span", { class: "muted" }, `v${a.version}`))));
    if (!this.current && agents.length) this.edit(agents[0]);
    else if (!agents.length) this.edit(null);
  }

  edit(agent) {
    this.current = agent ? agent.id : null;
    for (const li of this.dom.list.children) li.classList.toggle("selected", li.dataset.agentId === this.current);
    this.dom.title.textContent = agent ? `${agent.spec.name} (v${agent.version})` : "New agent";
    this.dom.json.value = JSON.stringify(agent ? agent.spec : TEMPLATE, null, 2);
    this.dom.errors.replaceChildren();
    this.dom.saved.textContent = "";
    this.dom.testCall.hidden = !agent;
    if (agent) this.dom.testCall.href = `/test-call/${agent.id}`;
  }

  async save() {
    this.dom.errors.replaceChildren();
    let spec;
    try {
      spec = JSON.parse(this.dom.json.value);
    } catch (e) {
      this.dom.errors.append(el("li", {}, `JSON: ${e.message}`));
      return;
    }
    try {
      const saved = this.current
        ? await api.put(`/api/v1/agents/${this.current}`, spec)
        : await api.post("/api/v1/agents", spec);
      this.current = saved.id;
      await this.load();
      this.edit(saved);
      this.dom.saved.textContent = `saved as version ${saved.version}`;
    } catch (e) {
      const items = e instanceof ApiError ? e.fieldErrors : [{ path: "", msg: e.message }];
      this.dom.errors.replaceChildren(...items.map((f) =>
        el("li", { "data-field": f.path.replace(/^body\./, "") },
          f.path ? el("code", {}, f.path.replace(/^body\./, "")) : null, f.path ? ": " : "", f.msg)));
    }
  }
}
