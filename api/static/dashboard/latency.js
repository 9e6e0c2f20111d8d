// Per-turn latency waterfall (SVG): each turn's stages as bars on one time axis,
// measured from the end of the caller's speech.
const STAGES = [
  // [label, start mark, end mark, color]; STT starts "stt" ms before its final.
  ["endpointing wait", "speech_end", "endpoint", "#94a3b8"],
  ["STT", null, "stt_final", "#8b5cf6"],
  ["LLM first token", "stt_final", "llm_first_token", "#2f6fed"],
  ["first clause", "llm_first_token", "first_clause", "#0ea5e9"],
  ["TTS first audio", "first_clause", "tts_first_audio", "#f59e0b"],
  ["response", "endpoint", "first_audio_out", "#1f9d55"],
];
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// turns: [{turn, marks: {name: seconds}, stages_ms: {...}}] (the call record's latency)
export function waterfall(turns) {
  const rows = [];
  for (const t of turns) {
    rows.push({ header: true, turn: t.turn, start: 0, end: 0 });
    const marks = t.marks || {};
    const origin = marks.speech_end ?? Math.min(...Object.values(marks));
    const ms = (name) => (marks[name] === undefined ? undefined : (marks[name] - origin) * 1000);
    for (const [label, from, to, color] of STAGES) {
      let end = ms(to);
      let start = from === null ? (end === undefined ? undefined : end - (t.stages_ms || {}).stt) : ms(from);
      if (start === undefined || end === undefined || Number.isNaN(start)) continue;
      if (end < start) [start, end] = [end, start];
      rows.push({ turn: t.turn, label, start, end, color });
    }
  }
  const width = 640, labelW = 150, rowH = 18, top = 22;
  const height = top + rows.length * rowH + 24;
  const root = svg("svg", { class: "waterfall", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  root.append(svg("title", {}, "Per-turn latency waterfall"));
  if (!rows.some((r) => !r.header)) {
    root.append(svg("text", { x: 8, y: 16 }, "no turn measured"));
    return root;
  }
  const maxMs = Math.max(...rows.map((r) => r.end), 1);
  const minMs = Math.min(0, ...rows.map((r) => r.start));
  const scale = (width - labelW - 60) / (maxMs - minMs);
  const x = (v) => labelW + (v - minMs) * scale;
  // axis: 0 (speech end) and the maximum
  for (const tick of [0, maxMs / 2, maxMs]) {
    root.append(svg("line", { x1: x(tick), x2: x(tick), y1: top - 6, y2: height - 20, stroke: "#e3e6eb" }));
    root.append(svg("text", { x: x(tick) - 10, y: height - 6 }, `${Math.round(tick)} ms`));
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    if (r.header) {
      root.append(svg("text", { x: 4, y: y + 12, "font-weight": "bold" }, `turn ${r.turn}`));
      return;
    }
    root.append(svg("text", { x: 14, y: y + 12 }, r.label));
    const bar = svg("rect", {
      x: x(r.start), y: y + 2, width: Math.max(2, (r.end - r.start) * scale), height: rowH - 5,
      fill: r.color, rx: 3, "data-stage": r.label,
    });
    bar.append(svg("title", {}, `${r.label}: ${Math.round(r.end - r.start)} ms`));
    root.append(bar);
    root.append(svg("text", { x: x(r.end) + 4, y: y + 12 }, `${Math.round(r.end - r.start)}`));
  });
  return root;
}
