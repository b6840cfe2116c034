// nostr-training web view: a little hand-written script, no build step.
// - counts down to the start and counts time in the session (display only: the server decides
//   when the page changes, through server-sent events);
// - refreshes the live section when the daemon says something changed (EventSource);
// - admits or denies from the waiting room without a reload;
// - reports the ranges of the recording really played (seeking is not watching).
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="csrf"]').content;

  function fmt(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600);
    const m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    const parts = [];
    if (d) parts.push(d + " d");
    if (d || h) parts.push(h + " h");
    parts.push(m + " min", s + " s");
    return parts.join(" ");
  }

  let ticker = null;
  function startClocks(root) {
    const countdowns = root.querySelectorAll("[data-countdown]");
    const elapsed = root.querySelectorAll("[data-elapsed]");
    const began = Date.now();
    function tick() {
      const passed = (Date.now() - began) / 1000;
      countdowns.forEach(el => { el.textContent = fmt(Number(el.dataset.countdown) - passed); });
      elapsed.forEach(el => {
        const base = Number(el.dataset.elapsed);
        el.textContent = fmt(el.dataset.running === "yes" ? base + passed : base);
      });
    }
    if (ticker) clearInterval(ticker);
    if (countdowns.length || elapsed.length) { tick(); ticker = setInterval(tick, 1000); }
  }

  async function post(url, body, json) {
    const headers = { "X-CSRF-Token": csrf };
    if (json) headers["Content-Type"] = "application/json";
    return fetch(url, { method: "POST", headers, body: json ? JSON.stringify(body) : body, credentials: "same-origin" });
  }

  // Forms post through fetch(): with Referrer-Policy no-referrer a plain form navigation sends
  // "Origin: null", which the server refuses; a same-origin fetch sends our exact origin. The
  // answer (the page a POST redirects to, or an error page) replaces <main>.
  async function submitForm(form, submitter, refresh) {
    const data = new FormData(form);
    if (submitter && submitter.name) data.set(submitter.name, submitter.value);
    form.querySelectorAll("button").forEach(b => { b.disabled = true; });
    let answer;
    try {
      answer = await post(form.action, data, false);
    } catch (error) {
      form.querySelectorAll("button").forEach(b => { b.disabled = false; });
      return;
    }
    const type = answer.headers.get("Content-Type") || "";
    if (type.startsWith("application/json") && answer.ok) {
      if (refresh) refresh();
      return;
    }
    const text = await answer.text();
    if (!type.startsWith("text/html")) {
      form.querySelectorAll("button").forEach(b => { b.disabled = false; });
      let alert = form.querySelector(".error");
      if (!alert) { alert = document.createElement("p"); alert.className = "error"; alert.setAttribute("role", "alert"); form.append(alert); }
      alert.textContent = text;
      return;
    }
    const next = new DOMParser().parseFromString(text, "text/html");
    const main = document.getElementById("main"), fresh = next.getElementById("main");
    if (!main || !fresh) return;
    document.title = next.title;
    main.innerHTML = fresh.innerHTML;
    if (answer.ok && answer.url) history.replaceState(null, "", answer.url);
    setup();
    main.focus();
  }

  function bindForms(root, refresh) {
    root.querySelectorAll("form[method=post]").forEach(form => {
      if (form.dataset.bound) return;
      form.dataset.bound = "yes";
      form.addEventListener("submit", event => {
        event.preventDefault();
        submitForm(form, event.submitter, form.classList.contains("js-decide") ? refresh : null);
      });
    });
  }

  function bindRecording(root) {
    const video = root.querySelector("video[data-lesson]");
    if (!video || video.dataset.bound) return;
    video.dataset.bound = "yes";
    const lesson = video.dataset.lesson;
    let from = null, last = null, reported = null;
    const watched = document.getElementById("watched");
    async function report(a, b) {
      if (b - a < 0.5) return;
      const answer = await post("/web/recording/progress", { lesson, from: a, to: b }, true);
      if (!answer.ok) return;
      const progress = await answer.json();
      if (watched) watched.textContent = Math.round(progress.percent);
      if (progress.completed) {
        const done = document.getElementById("completion");
        if (done) done.textContent = "Completed by watching the recording";
      }
      document.body.dataset.reports = String(Number(document.body.dataset.reports || 0) + 1);
    }
    function close() {
      if (from !== null && last !== null && last > from) {
        const a = from, b = last;
        if (reported === null || b > reported) { reported = b; report(a, b); }
      }
      from = null; last = null; reported = null;
    }
    video.addEventListener("timeupdate", () => {
      if (video.seeking || video.paused && video.currentTime === last) return;
      const t = video.currentTime;
      if (from === null) { from = t; last = t; return; }
      if (t < last) { close(); from = t; last = t; return; }
      last = t;
      if (last - (reported ?? from) >= 10) { reported = last; report(from, last); }
    });
    // Playback starts where the element stands (after a seek, from the seek's target).
    video.addEventListener("playing", () => { close(); from = video.currentTime; last = from; });
    video.addEventListener("seeking", close);
    video.addEventListener("pause", close);
    video.addEventListener("ended", () => { if (from !== null) last = video.duration; close(); });
  }

  function bindLive(section) {
    const fragment = section.dataset.fragment, events = section.dataset.events;
    let pending = false, again = false;
    async function refresh() {
      if (pending) { again = true; return; }  // one more fetch once this one is in
      pending = true;
      again = false;
      try {
        const answer = await fetch(fragment, { credentials: "same-origin" });
        if (answer.ok) {
          const active = document.activeElement && document.activeElement.id;
          section.innerHTML = await answer.text();
          init(section, refresh);
          if (active) { const again = document.getElementById(active); if (again) again.focus(); }
          document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
        }
      } finally {
        pending = false;
        if (again) refresh();
      }
    }
    if (events && window.EventSource) {
      source = new EventSource(events);
      source.addEventListener("changed", refresh);
      source.addEventListener("open", () => { document.body.dataset.live = "open"; });
    }
    return refresh;
  }

  function bindDrop() {
    const drop = document.getElementById("drop"), input = document.getElementById("bundle");
    if (!drop || !input) return;
    ["dragenter", "dragover"].forEach(n => drop.addEventListener(n, e => { e.preventDefault(); drop.classList.add("over"); }));
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", e => {
      e.preventDefault();
      drop.classList.remove("over");
      if (e.dataTransfer.files.length) { input.files = e.dataTransfer.files; document.getElementById("verify-form").requestSubmit(); }
    });
  }

  function init(root, refresh) {
    startClocks(root);
    bindForms(root, refresh || (() => location.reload()));
    bindRecording(root);
  }

  let source = null;
  function setup() {
    const section = document.getElementById("live");
    if (source) { source.close(); source = null; }
    document.body.dataset.live = "";
    const refresh = section ? bindLive(section) : null;
    init(document, refresh);
    bindDrop();
    document.body.dataset.ready = "yes";
  }

  document.addEventListener("DOMContentLoaded", setup);
})();
