// Structured forms over parts of an agent spec: the flow (nodes, slots, global nodes),
// the custom HTTP tools and web search. Every input writes straight into the spec object
// it was given, so what a form does not show (a node's branches, an enum slot's values)
// is saved exactly as it was. Each field carries data-path, its place in the spec
// ("flow.nodes.0.say"): the API's 422 `loc` without "body", so errors land beside it.
import { el } from "./api.js";

const SLOT_TYPES = ["text", "enum", "weekday", "time", "phone", "name", "yes_no", "integer"];
const ACTIONS = ["none", "end_call", "transfer"];
const RESPOND = ["template", "llm"];
const NODE_IDS = "flow-node-ids";

export const STARTER_FLOW = () => ({
  start: "greeting",
  slots: [],
  nodes: [{ id: "greeting", say: "Hello! How can I help you today?", respond: "llm",
    task: "Answer the caller's question in one short sentence." }],
  global_nodes: [],
});

// ctx: {invalid: Map(path -> message) of JSON boxes that do not parse,
//       rerender(): draw the forms again from the spec (after adding or removing an item),
//       changed(): an input changed the spec}
export function field(obj, key, path, ctx, opts = {}) {
  const kind = opts.kind || "text";
  const value = obj[key];
  let input;
  if (kind === "textarea" || kind === "json") {
    input = el("textarea", { rows: opts.rows || (kind === "json" ? 4 : 2), spellcheck: "false" });
    input.value = kind === "json" ? JSON.stringify(value ?? opts.fallback, null, 2) : value ?? "";
  } else if (kind === "select") {
    input = el("select", {}, opts.options.map((o) => el("option", { value: o }, o)));
    input.value = value ?? opts.options[0];
  } else if (kind === "checkbox") {
    input = el("input", { type: "checkbox" });
    input.checked = !!value;
  } else {
    input = el("input", { type: kind === "number" ? "number" : "text", step: opts.step || null,
      list: opts.datalist || null });
    input.value = kind === "list" ? (value || []).join(", ") : value ?? "";
  }
  const update = () => {
    if (kind === "checkbox") obj[key] = input.checked;
    else if (kind === "select") obj[key] = input.value;
    else if (kind === "list") obj[key] = input.value.split(",").map((s) => s.trim()).filter(Boolean);
    else if (kind === "number") {
      // empty: the server's default rather than a 0 nobody typed
      if (input.value === "") delete obj[key];
      else obj[key] = Number(input.value);
    } else if (kind === "json") {
      try {
        obj[key] = JSON.parse(input.value);
        ctx.invalid.delete(path);
      } catch (e) {
        ctx.invalid.set(path, `not valid JSON: ${e.message}`);
      }
    } else if (input.value === "" && opts.empty === "null") obj[key] = null;
    else obj[key] = input.value;
    ctx.changed();
  };
  input.addEventListener(kind === "checkbox" || kind === "select" ? "change" : "input", update);
  return el("label", { class: `field${opts.wide ? " wide" : ""}${kind === "checkbox" ? " check" : ""}`,
    "data-path": path }, el("span", {}, opts.label || key), input);
}

function item(legend, path, ctx, list, index, ...children) {
  const remove = el("button", { type: "button", class: "small secondary", onclick: () => {
    list.splice(index, 1);
    ctx.rerender();
  } }, "Remove");
  return el("fieldset", { class: "item", "data-path": path },
    el("legend", {}, legend), ...children, el("div", { class: "row" }, el("span", { class: "spacer" }), remove));
}

function adder(label, list, make, ctx) {
  return el("button", { type: "button", class: "small", onclick: () => {
    list.push(make());
    ctx.rerender();
  } }, label);
}

// Where a node's less common parts are edited: the raw JSON view shows the whole node.
function rawOnly(obj, keys) {
  const present = keys.filter((k) => {
    const v = obj[k];
    return v !== null && v !== undefined && !(Array.isArray(v) && !v.length) && !(typeof v === "object" && !Array.isArray(v) && !Object.keys(v).length);
  });
  return present.length ? el("p", { class: "muted small-print" }, `${present.join(", ")}: kept as is, edit in the raw JSON view`) : null;
}

function nodeCard(flow, i, ctx) {
  const node = flow.nodes[i];
  const p = `flow.nodes.${i}`;
  return item(`Node ${i + 1}`, p, ctx, flow.nodes, i,
    el("div", { class: "fields" },
      field(node, "id", `${p}.id`, ctx),
      field(node, "next", `${p}.next`, ctx, { empty: "null", datalist: NODE_IDS, label: "next node" }),
      field(node, "say", `${p}.say`, ctx, { kind: "textarea", empty: "null", wide: true, label: "say (a template, e.g. {day})" }),
      field(node, "collect", `${p}.collect`, ctx, { kind: "list", label: "collect (slot names, comma separated)", wide: true }),
      field(node, "confirm", `${p}.confirm`, ctx, { empty: "null", wide: true, label: "confirm (read back before moving on)" }),
      field(node, "confirmed", `${p}.confirmed`, ctx, { empty: "null", label: "said after a yes" }),
      field(node, "respond", `${p}.respond`, ctx, { kind: "select", options: RESPOND }),
      field(node, "action", `${p}.action`, ctx, { kind: "select", options: ACTIONS }),
      field(node, "transfer_to", `${p}.transfer_to`, ctx, { empty: "null", label: "transfer to" }),
      field(node, "task", `${p}.task`, ctx, { kind: "textarea", wide: true, label: "task (respond=llm: the model's prompt)" })),
    rawOnly(node, ["tool", "on_tool_error", "branches"]));
}

function slotCard(flow, i, ctx) {
  const slot = flow.slots[i];
  const p = `flow.slots.${i}`;
  return item(`Slot ${i + 1}`, p, ctx, flow.slots, i,
    el("div", { class: "fields" },
      field(slot, "name", `${p}.name`, ctx),
      field(slot, "type", `${p}.type`, ctx, { kind: "select", options: SLOT_TYPES }),
      field(slot, "prompt", `${p}.prompt`, ctx, { wide: true, label: "prompt (how the agent asks)" }),
      field(slot, "confirm", `${p}.confirm`, ctx, { empty: "null", wide: true, label: "confirm (read back, e.g. I have {phone}. Is that right?)" }),
      field(slot, "invalid", `${p}.invalid`, ctx, { empty: "null", wide: true, label: "said when a value is not allowed" }),
      field(slot, "required", `${p}.required`, ctx, { kind: "checkbox" })),
    rawOnly(slot, ["values", "spoken", "allowed", "between", "reprompt"]));
}

function globalCard(flow, i, ctx) {
  const g = flow.global_nodes[i];
  const p = `flow.global_nodes.${i}`;
  return item(`Global node ${i + 1}`, p, ctx, flow.global_nodes, i,
    el("div", { class: "fields" },
      field(g, "id", `${p}.id`, ctx),
      field(g, "then", `${p}.then`, ctx, { empty: "null", datalist: NODE_IDS, label: "then (empty: resume)" }),
      field(g, "phrases", `${p}.phrases`, ctx, { kind: "list", wide: true, label: "phrases (comma separated)" }),
      field(g, "say", `${p}.say`, ctx, { kind: "textarea", empty: "null", wide: true }),
      field(g, "action", `${p}.action`, ctx, { kind: "select", options: ACTIONS }),
      field(g, "transfer_to", `${p}.transfer_to`, ctx, { empty: "null", label: "transfer to" })),
    rawOnly(g, ["tool", "task"]));
}

export function flowForm(spec, ctx) {
  const flow = spec.flow;
  if (!flow) {
    return el("div", { "data-path": "flow" },
      el("p", { class: "muted" }, "No flow: this agent answers from its prompt alone."),
      el("button", { type: "button", id: "flow-add", onclick: () => {
        spec.flow = STARTER_FLOW();
        ctx.rerender();
      } }, "Add a flow"));
  }
  for (const key of ["slots", "nodes", "global_nodes"]) flow[key] ??= [];
  const ids = el("datalist", { id: NODE_IDS });
  const refreshIds = () => ids.replaceChildren(...flow.nodes.map((n) => el("option", { value: n.id })));
  refreshIds();
  // a node renamed: the next/start suggestions follow (input events bubble up here)
  return el("div", { "data-path": "flow", oninput: refreshIds }, ids,
    el("div", { class: "fields" },
      field(flow, "start", "flow.start", ctx, { datalist: NODE_IDS, label: "start node" }),
      field(flow, "fallback_node", "flow.fallback_node", ctx, { empty: "null", datalist: NODE_IDS, label: "fallback node" }),
      field(flow, "extraction", "flow.extraction", ctx, { kind: "select", options: ["auto", "rules", "tools"] }),
      field(flow, "max_retries", "flow.max_retries", ctx, { kind: "number", step: "1", label: "max retries" }),
      field(flow, "not_understood", "flow.not_understood", ctx, { wide: true, label: "not understood" }),
      field(flow, "summary", "flow.summary", ctx, { empty: "null", wide: true, label: "summary (a template)" })),
    el("h3", {}, "Nodes"),
    el("div", { "data-path": "flow.nodes" }, flow.nodes.map((_, i) => nodeCard(flow, i, ctx))),
    adder("Add node", flow.nodes, () => ({ id: `node_${flow.nodes.length + 1}`, say: "" }), ctx),
    el("h3", {}, "Slots"),
    el("div", { "data-path": "flow.slots" }, flow.slots.map((_, i) => slotCard(flow, i, ctx))),
    adder("Add slot", flow.slots, () => ({ name: `slot_${flow.slots.length + 1}`, type: "text", prompt: "" }), ctx),
    el("h3", {}, "Global nodes"),
    el("div", { "data-path": "flow.global_nodes" }, flow.global_nodes.map((_, i) => globalCard(flow, i, ctx))),
    adder("Add global node", flow.global_nodes, () => ({ id: `global_${flow.global_nodes.length + 1}`, phrases: ["help"], say: "" }), ctx),
    el("div", { class: "row" }, el("span", { class: "spacer" }),
      el("button", { type: "button", class: "small secondary", onclick: () => {
        spec.flow = null;
        ctx.rerender();
      } }, "Remove the flow")));
}

function toolCard(spec, i, ctx) {
  const tool = spec.tools[i];
  const p = `tools.${i}`;
  return item(`Tool ${i + 1}`, p, ctx, spec.tools, i,
    el("div", { class: "fields" },
      field(tool, "name", `${p}.name`, ctx),
      field(tool, "method", `${p}.method`, ctx, { kind: "select", options: ["GET", "POST", "PUT", "PATCH", "DELETE"] }),
      field(tool, "url", `${p}.url`, ctx, { wide: true, label: "url ({param} placeholders from the arguments)" }),
      field(tool, "description", `${p}.description`, ctx, { kind: "textarea", wide: true, label: "description (when to call it, for the model)" }),
      field(tool, "timeout_s", `${p}.timeout_s`, ctx, { kind: "number", step: "0.1", label: "timeout (s)" }),
      field(tool, "max_response_bytes", `${p}.max_response_bytes`, ctx, { kind: "number", step: "1", label: "max response bytes" }),
      field(tool, "parameters", `${p}.parameters`, ctx, { kind: "json", wide: true, rows: 5,
        fallback: { type: "object", properties: {} }, label: "parameters (JSON schema)" }),
      field(tool, "headers", `${p}.headers`, ctx, { kind: "json", wide: true, rows: 2, fallback: {},
        label: "headers (JSON; a secret is {{secret:ENV_NAME}})" })));
}

export function toolsForm(spec, ctx) {
  spec.tools ??= [];
  spec.web_search ??= { enabled: false, provider: "searxng" };
  const ws = spec.web_search;
  return el("div", {},
    el("h3", {}, "Custom HTTP tools"),
    el("div", { "data-path": "tools" }, spec.tools.length
      ? spec.tools.map((_, i) => toolCard(spec, i, ctx))
      : el("p", { class: "muted" }, "No tools.")),
    adder("Add tool", spec.tools, () => ({ name: "", description: "", method: "GET", url: "",
      parameters: { type: "object", properties: {} } }), ctx),
    el("h3", {}, "Web search"),
    el("fieldset", { class: "item", "data-path": "web_search" },
      el("div", { class: "fields" },
        field(ws, "enabled", "web_search.enabled", ctx, { kind: "checkbox", label: "offer the model a web_search tool" }),
        field(ws, "provider", "web_search.provider", ctx, { kind: "select", options: ["searxng", "brave", "tavily"] }),
        field(ws, "base_url", "web_search.base_url", ctx, { empty: "null", wide: true, label: "base url (SearXNG: your instance)" }),
        field(ws, "api_key_env", "web_search.api_key_env", ctx, { empty: "null", label: "key's environment variable" }),
        field(ws, "max_results", "web_search.max_results", ctx, { kind: "number", step: "1", label: "max results" }),
        field(ws, "timeout_s", "web_search.timeout_s", ctx, { kind: "number", step: "0.1", label: "timeout (s)" }))));
}

// The flow's cross-reference checks fail the flow as a whole (loc ["body", "flow"]) and
// say in the message which node or slot they mean: point at that node's field, so the
// error sits where the fix is. Anything unrecognised stays on the flow.
export function refineFlowPath(path, msg, flow) {
  if (path !== "flow" || !flow) return path;
  const text = msg.replace(/^Value error, /, "");
  const nodeAt = (id) => (flow.nodes || []).findIndex((n) => n.id === id);
  const globalAt = (id) => (flow.global_nodes || []).findIndex((n) => n.id === id);
  let m;
  if (/^start: /.test(text)) return "flow.start";
  if (/^fallback_node: /.test(text)) return "flow.fallback_node";
  if (/^summary: /.test(text)) return "flow.summary";
  if ((m = text.match(/^global node ([a-z0-9_]+): (goes to unknown node)?/))) {
    const i = globalAt(m[1]);
    if (i >= 0) return m[2] ? `flow.global_nodes.${i}.then` : `flow.global_nodes.${i}`;
  }
  if ((m = text.match(/^node ([a-z0-9_]+): /))) {
    const i = nodeAt(m[1]);
    if (i < 0) return path;
    const node = flow.nodes[i];
    const target = text.match(/goes to unknown node '([^']*)'/);
    if (target) {
      const key = ["next", "on_tool_error"].find((k) => node[k] === target[1]);
      return key ? `flow.nodes.${i}.${key}` : `flow.nodes.${i}`;
    }
    const slot = text.match(/unknown slot '([^']*)'/);
    if (slot && (node.collect || []).includes(slot[1])) return `flow.nodes.${i}.collect`;
    return `flow.nodes.${i}`;
  }
  if ((m = text.match(/^slot ([a-z0-9_]+): /))) {
    const i = (flow.slots || []).findIndex((s) => s.name === m[1]);
    if (i >= 0) return `flow.slots.${i}`;
  }
  return path;
}
