// The labelling page: one pair at a time, answered with y / n / s (q stops).
// It sets data-question on the body to the index shown (the tests read it).
(function () {
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
    fetch("/question/" + index).then(function (r) { return r.json(); }).then(show);
  }

  document.addEventListener("keydown", function (event) {
    if (busy || !current) { return; }
    if (event.key === "q") {
      fetch("/quit", {method: "POST"});
      document.body.innerHTML = '<p id="done">Stopped; your answers are stored.</p>';
      return;
    }
    var label = KEYS[event.key];
    if (!label) { return; }
    busy = true;
    fetch("/answer", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({index: current.index, label: label})})
      .then(function () { busy = false; load(current.index + 1); });
  });
  load(0);
})();
