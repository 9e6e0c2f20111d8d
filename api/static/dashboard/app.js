// The dashboard: login, navigation, and the live feed wired to the views.
import { api, session } from "./api.js";
import { ActiveCalls } from "./active.js";
import { AgentEditor } from "./agents.js";
import { CallLog } from "./calls.js";
import { Campaigns } from "./campaigns.js";
import { LiveFeed } from "./feed.js";

const $ = (id) => document.getElementById(id);
const feed = new LiveFeed();
const active = new ActiveCalls($("active-calls"), $("no-active"), $("active-count"));
const log = new CallLog($("calls-table"), $("calls-more"), $("call-detail"), $("calls-status"));
const campaigns = new Campaigns($("campaigns"), feed);
const agents = new AgentEditor({
  list: $("agent-list"), title: $("agent-title"), name: $("agent-name-field"), json: $("agent-json"),
  flowJson: $("flow-json"), flowForm: $("flow-form"), flowRaw: $("flow-raw"),
  flowModes: [...document.querySelectorAll("input[name=flow-mode]")], tools: $("tools-form"),
  tabs: [...document.querySelectorAll("#agent-editor .tab")],
  panels: [...document.querySelectorAll("#agent-editor .panel")], versions: $("agent-versions"),
  errors: $("agent-errors"), save: $("agent-save"), saved: $("agent-saved"), newButton: $("agent-new"),
  testCall: $("agent-test-call"),
});
const loaders = { live: () => active.load(), calls: () => log.load(), campaigns: () => campaigns.load(), agents: () => agents.load() };

// For tests and the curious: what the page has seen.
window.voxlineDashboard = { feed, active, log, campaigns, agents, events: [] };

feed.addEventListener("event", (e) => {
  const event = e.detail;
  window.voxlineDashboard.events.push(event);
  if (window.voxlineDashboard.events.length > 2000) window.voxlineDashboard.events.shift();
  active.handle(event);
  campaigns.handle(event);
});
feed.addEventListener("status", (e) => {
  const pill = $("feed-status");
  pill.textContent = e.detail.connected ? "live" : e.detail.error ? `feed: ${e.detail.error}` : "reconnecting";
  pill.classList.toggle("on", !!e.detail.connected);
});

function show(view) {
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${view}`;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === view);
  loaders[view]().catch((err) => console.error(view, err));
}

function currentView() {
  const view = location.hash.slice(1);
  return view in loaders ? view : "live";
}

async function enter() {
  $("login").hidden = true;
  for (const id of ["nav", "feed-status", "logout"]) $(id).hidden = false;
  feed.start();
  show(currentView());
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  session.key = $("login-key").value.trim();
  try {
    await api.get("/api/v1/agents"); // the key works
    $("login-error").textContent = "";
    await enter();
  } catch (err) {
    session.key = null;
    $("login-error").textContent = err.status === 401 ? "That key was not accepted." : err.message;
  }
});
$("logout").addEventListener("click", () => {
  session.key = null;
  feed.stop();
  location.hash = "";
  location.reload();
});
$("calls-filter").addEventListener("submit", (e) => { e.preventDefault(); log.load(); });
window.addEventListener("hashchange", () => { if (session.key) show(currentView()); });

if (session.key) enter();
