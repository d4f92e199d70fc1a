// The labelling page: one pair at a time, answered with y / n / s (q stops).
// It sets data-question on the body to the index shown (the tests read it).
// Two homes: `poiflow label --web` (data-mode="local": /question/N, POST /answer) and
// `poiflow serve` (data-mode="served": /review/question/N, answers to POST /labels with
// the write token typed into the page, kept for the browser tab only).
(function () {
  var served = document.body.dataset.mode === "served";
  var token = document.getElementById("token");
  if (token) {
    token.value = sessionStorage.getItem("poiflow-token") || "";
    token.addEventListener("change", function () { sessionStorage.setItem("poiflow-token", token.value); });
  }
  var FIELDS = ["record", "name", "category", "address", "phone", "website", "where", "updated"];
  var KEYS = {y: "match", n: "different", s: "unsure"};
  var map = L.map("map", {preferCanvas: true});
  L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {maxZoom: 19,
    attribution: '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'}).addTo(map);
  var layer = L.layerGroup().addTo(map);
  var current = null;
  var busy = false;

  function cell(row, text, same) {
    var td = document.createElement("td");
    td.textContent = text || "";
    if (same) { td.className = "same"; }
    row.appendChild(td);
  }

  function fill(id, record, other) {
    var table = document.getElementById(id);
    table.innerHTML = "";
    FIELDS.forEach(function (field) {
      var row = document.createElement("tr");
      cell(row, field, false);
      cell(row, record[field], field !== "record" && record[field] && record[field] === other[field]);
      table.appendChild(row);
    });
  }

  function show(question) {
    if (question.done) {
      document.body.innerHTML = '<p id="done">Every question is answered. Thank you.</p>';
      document.body.dataset.question = "done";
      return;
    }
    current = question;
    document.getElementById("progress").textContent =
      "question " + (question.index + 1) + " of " + question.total;
    document.getElementById("why").className = "";
    document.getElementById("why").textContent = "The model says " + question.probability +
      " (" + question.reason + ")" + (question.distance_m === null ? "" : "; " + question.distance_m + " m apart") + ".";
    fill("left", question.left, question.right);
    fill("right", question.right, question.left);
    layer.clearLayers();
    var points = [question.left.position, question.right.position].filter(Boolean);
    points.forEach(function (p, i) {
      L.circleMarker(p, {radius: 8, color: i ? "#c62828" : "#2f6db5"}).addTo(layer);
    });
    if (points.length === 2) { L.polyline(points, {color: "#6b7a8c"}).addTo(layer); }
    if (points.length) { map.fitBounds(points, {padding: [60, 60], maxZoom: 18}); } else { map.setView([0, 0], 2); }
    document.body.dataset.question = String(question.index);
  }

  function load(index) {
    fetch((served ? "/review/question/" : "/question/") + index)
      .then(function (r) { return r.json(); }).then(show);
  }

  function send(label) {
    if (!served) {
      return fetch("/answer", {method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({index: current.index, label: label})});
    }
    return fetch("/labels", {method: "POST", headers: {"Content-Type": "application/json",
      "Authorization": "Bearer " + (token ? token.value : "")},
      body: JSON.stringify({left_source: current.left_source, left_id: current.left_id,
        right_source: current.right_source, right_id: current.right_id, label: label,
        probability: current.probability})});
  }

  document.addEventListener("keydown", function (event) {
    if (busy || !current) { return; }
    if (event.target && event.target.tagName === "INPUT") {
      if (event.key === "Enter") { event.target.blur(); }
      return;  // typing the token, not answering
    }
    if (event.key === "q") {
      if (served) { window.location.href = "/"; return; }
      fetch("/quit", {method: "POST"});
      document.body.innerHTML = '<p id="done">Stopped; your answers are stored.</p>';
      return;
    }
    var label = KEYS[event.key];
    if (!label) { return; }
    busy = true;
    send(label).then(function (r) {
      busy = false;
      if (r.ok) { load(current.index + 1); return; }
      return r.json().then(function (body) {
        var why = document.getElementById("why");
        why.textContent = "Not stored: " + (typeof body.detail === "string" ? body.detail : r.status) +
          (r.status === 401 || r.status === 403 ? " (type the write token above, then answer again)" : "");
        why.className = "error";
        document.body.dataset.refused = String(r.status);
      });
    });
  });
  load(0);
})();
