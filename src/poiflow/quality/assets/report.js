// The report's map: places as circle markers, lines from each place to its records.
// With known truth, the error pairs as lines: dashed red where the run kept one place's
// records apart, purple where it joined two places' records; a layer control hides them.
// It sets data-markers, data-errors and data-ready on the body once drawn (the browser
// test reads them).
(function(){
  var data = JSON.parse(document.getElementById("map-data").textContent);
  var map = L.map("map", {preferCanvas: true});
  L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {maxZoom: 19,
    attribution: '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'}).addTo(map);
  map.attributionControl.addAttribution("Places: poiflow; map data &copy; OpenStreetMap contributors where the sources include OSM");
  var colours = {"": "#2f6db5", "warn": "#e08a00", "error": "#c62828"};
  data.links.forEach(function(l){
    L.polyline([[l[0], l[1]], [l[2], l[3]]], {color: "#6b7a8c", weight: 1, opacity: 0.6}).addTo(map);
  });
  var esc = function(s){ var d = document.createElement("div"); d.textContent = s; return d.innerHTML; };
  var bounds = [];
  var count = 0;
  data.points.forEach(function(p){
    var marker = L.circleMarker([p[0], p[1]], {radius: 3 + Math.min(6, 2 * Math.log2(p[4])),
      color: colours[p[6]], weight: 1, fillOpacity: 0.7});
    marker.bindPopup("<b>" + esc(p[2]) + "</b><br>" + esc(p[3]) + "<br>" + p[4] + " record(s), confidence " + p[5]
      + (p[7] ? "<br><i>" + esc(p[7]) + "</i>" : "") + "<br><code>" + esc(p[8]) + "</code>");
    marker.addTo(map);
    bounds.push([p[0], p[1]]);
    count += 1;
  });
  // Drawn last: above the places, or the markers of a dense centre would hide them.
  var missed = L.layerGroup(), wrong = L.layerGroup();
  (data.errors || []).forEach(function(e){
    var line = L.polyline([[e[0], e[1]], [e[2], e[3]]], e[4] === "missed"
      ? {color: "#c62828", weight: 3, opacity: 0.9, dashArray: "5 4"}
      : {color: "#7b1fa2", weight: 3, opacity: 0.9});
    line.bindPopup(esc(e[5]));
    line.addTo(e[4] === "missed" ? missed : wrong);
  });
  if ((data.errors || []).length) {
    missed.addTo(map);
    wrong.addTo(map);
    L.control.layers(null, {"missed pairs": missed, "wrong pairs": wrong}, {collapsed: false}).addTo(map);
  }
  if (bounds.length) { map.fitBounds(bounds, {padding: [20, 20]}); } else { map.setView([0, 0], 2); }
  document.body.dataset.markers = count;
  document.body.dataset.errors = (data.errors || []).length;
  document.body.dataset.ready = "1";
})();
