// The map page of `poiflow serve`: search the golden places, see them on a map, open one
// with its sources. Keyboard: "/" to search, arrows to move through results, Enter to open.
// It sets data-ready on the body once the first places are drawn, data-markers to the
// number of places on the map, data-results to the number of results shown (with "open
// now" ticked, only places open now, each with the time it closes),
// data-query to the query they answer, data-open to "1" when they are only places open now,
// data-near to the point they are near ("lat,lon"; empty when none), and data-place to the
// id of the place shown (the tests read them).
// Near the map's centre, the results follow the map: with words or without (the nearest
// places then), asked again whenever the map is moved, and the map is not fitted to them.
(function () {
  var map = L.map("map", {preferCanvas: true});
  L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {maxZoom: 19,
    attribution: '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'}).addTo(map);
  var layer = L.layerGroup().addTo(map);
  var box = document.getElementById("q");
  var near = document.getElementById("near");
  var openNow = document.getElementById("open");
  var list = document.getElementById("results");
  var details = document.getElementById("details");
  var results = [];
  var selected = -1;
  var markers = {};
  var pending = null;

  function text(tag, value, cls) {
    var node = document.createElement(tag);
    node.textContent = value === null || value === undefined ? "" : String(value);
    if (cls) { node.className = cls; }
    return node;
  }

  // "open until 17:00" on the place's own clock (its offset is in the string, and the
  // browser's is not used); "open" with no end in the year ahead.
  function openText(until) {
    return until ? "open until " + until.slice(11, 16) : "open";
  }

  function draw(places, fit) {
    layer.clearLayers();
    markers = {};
    var points = [];
    places.forEach(function (p) {
      if (p.lat === null || p.lon === null || p.lat === undefined) { return; }
      var marker = L.circleMarker([p.lat, p.lon], {radius: 6, color: "#2f6db5", weight: 2})
        .bindTooltip(p.name || p.id).on("click", function () { open(p.id); });
      marker.addTo(layer);
      markers[p.id] = marker;
      points.push([p.lat, p.lon]);
    });
    document.body.dataset.markers = String(points.length);
    if (points.length && fit) { map.fitBounds(points, {padding: [40, 40], maxZoom: 17}); }
    else if (!map._loaded) { map.setView([20, 0], 2); }
  }

  function select(index) {
    var items = list.querySelectorAll("li");
    items.forEach(function (li, i) { li.className = i === index ? "selected" : ""; });
    selected = index;
    var place = results[index];
    if (place && markers[place.id]) {
      Object.keys(markers).forEach(function (id) { markers[id].setStyle({color: "#2f6db5"}); });
      markers[place.id].setStyle({color: "#c62828"}).bringToFront();
    }
  }

  function show(hits) {
    results = hits;
    list.innerHTML = "";
    hits.forEach(function (hit, i) {
      var li = document.createElement("li");
      li.appendChild(text("b", hit.name || hit.id));
      li.appendChild(text("span", hit.category || "", "meta"));
      if (hit.distance_km !== null && hit.distance_km !== undefined) {
        li.appendChild(text("span", hit.distance_km.toFixed(1) + " km", "meta"));
      }
      if (openNow.checked) {
        li.appendChild(text("span", openText(hit.open_until), "meta open"));
      }
      li.addEventListener("click", function () { select(i); open(hit.id); });
      list.appendChild(li);
    });
    document.body.dataset.results = String(hits.length);
    draw(hits, !near.checked);
    if (hits.length) { select(0); }
  }

  var asked = 0;  // the latest search: an answer to an earlier one arriving late is dropped

  function search() {
    var q = box.value.trim();
    var mine = ++asked;
    if (!q && !near.checked) {  // nothing to ask
      show([]);
      document.body.dataset.query = "";
      document.body.dataset.near = "";
      return;
    }
    var params = new URLSearchParams({q: q, limit: "20"});
    if (near.checked && map._loaded) {
      var c = map.getCenter();
      params.set("lat", c.lat.toFixed(6));
      params.set("lon", c.lng.toFixed(6));
    }
    if (openNow.checked) { params.set("open_at", "now"); }
    fetch("/search?" + params.toString())
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (mine !== asked) { return; }
        show(body.results || []);
        document.body.dataset.query = q;
        document.body.dataset.open = params.has("open_at") ? "1" : "0";
        document.body.dataset.near = params.has("lat") ? params.get("lat") + "," + params.get("lon") : "";
      });
  }

  function row(table, label, value) {
    if (value === null || value === undefined || value === "") { return; }
    var tr = document.createElement("tr");
    tr.appendChild(text("th", label));
    tr.appendChild(text("td", value));
    table.appendChild(tr);
  }

  function open(id) {
    fetch("/places/" + encodeURIComponent(id))
      .then(function (r) { return r.json(); })
      .then(function (place) {
        details.innerHTML = "";
        details.appendChild(text("h2", (place.names && place.names.primary) || place.id));
        var table = document.createElement("table");
        var address = place.address || {};
        row(table, "id", place.id);
        row(table, "category", place.categories && place.categories.primary);
        row(table, "address", ["street", "housenumber", "postcode", "locality"]
          .map(function (k) { return address[k]; }).filter(Boolean).join(" "));
        row(table, "hours", place.opening_hours);
        if (place.open_now !== null && place.open_now !== undefined) {
          row(table, "now", place.open_now ? openText(place.open_until) : "closed");
        }
        row(table, "phone", (place.phones || []).join(", "));
        row(table, "website", (place.websites || []).join(", "));
        row(table, "confidence", place.confidence === undefined ? null : Number(place.confidence).toFixed(2));
        row(table, "where", place.lat === null ? null : place.lat.toFixed(5) + ", " + place.lon.toFixed(5));
        details.appendChild(table);
        details.appendChild(text("h3", "Sources (" + (place.member_records || []).length + " records)"));
        var sources = document.createElement("ul");
        sources.id = "sources";
        (place.member_records || []).forEach(function (m) {
          sources.appendChild(text("li", m.source + "/" + m.id));
        });
        details.appendChild(sources);
        var chosen = (place.sources || []).filter(function (s) { return s.property; });
        if (chosen.length) {
          details.appendChild(text("h3", "Where each attribute came from"));
          var prov = document.createElement("table");
          prov.id = "provenance";
          chosen.forEach(function (s) {
            row(prov, s.property.replace(/^\//, ""),
              s.dataset + "/" + s.record_id + " (" + Number(s.confidence).toFixed(2) + ")");
          });
          details.appendChild(prov);
        }
        if (place.lat !== null && place.lat !== undefined) {
          map.setView([place.lat, place.lon], Math.max(map.getZoom(), 16));
        }
        document.body.dataset.place = place.id;
      });
  }

  box.addEventListener("input", function () {
    clearTimeout(pending);
    pending = setTimeout(search, 150);
  });
  near.addEventListener("change", search);
  openNow.addEventListener("change", function () { if (box.value.trim() || near.checked) { search(); } });
  map.on("moveend", function () {
    if (!near.checked) { return; }
    clearTimeout(pending);
    pending = setTimeout(search, 250);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "/" && document.activeElement !== box) {
      event.preventDefault();
      box.focus();
    } else if (event.key === "ArrowDown" && results.length) {
      event.preventDefault();
      select(Math.min(results.length - 1, selected + 1));
    } else if (event.key === "ArrowUp" && results.length) {
      event.preventDefault();
      select(Math.max(0, selected - 1));
    } else if (event.key === "Enter" && selected >= 0 && results[selected]) {
      event.preventDefault();
      open(results[selected].id);
    }
  });

  // First view: a page of places anywhere, so the map is not empty.
  fetch("/places?bbox=-180,-90,180,90&limit=500")
    .then(function (r) { return r.json(); })
    .then(function (body) {
      draw((body.places || []).map(function (p) {
        return {id: p.id, name: p.names && p.names.primary, lat: p.lat, lon: p.lon};
      }), true);
      document.body.dataset.ready = "1";
      box.focus();
    });
})();
