// Kontor's one script. Every page works without it; it only saves round trips:
// - a reference field suggests the names of records as one types (GET /suggest/{entity}),
//   and choosing one keeps its id in the hidden input beside the field;
// - a list's search box shows its results as one types, without pressing "Apply";
// - the announcements on top (GET /banner) are fetched again every half minute, and a
//   scheduled shutdown counts down, drawing attention 15, 5 and 1 minutes before.
"use strict";

(function () {
  function debounce(fn, ms) {
    var timer = null;
    return function () {
      var args = arguments;
      clearTimeout(timer);
      timer = setTimeout(function () { fn.apply(null, args); }, ms);
    };
  }

  // The hidden input that keeps the id of the record a reference field names.
  function keptInput(input) {
    var name = "ref-" + input.name;
    var kept = input.form && input.form.querySelector('input[type=hidden][name="' + CSS.escape(name) + '"]');
    if (!kept && input.form) {
      kept = document.createElement("input");
      kept.type = "hidden";
      kept.name = name;
      input.insertAdjacentElement("afterend", kept);
    }
    return kept;
  }

  function suggestUrl(input) {
    var fixed = input.getAttribute("data-suggest");
    if (fixed) return fixed;
    var sibling = input.getAttribute("data-suggest-entity-field");
    var select = sibling && input.form && input.form.elements[sibling];
    return select && select.value ? "/suggest/" + encodeURIComponent(select.value) : null;
  }

  function setUpReference(input) {
    var list = document.getElementById(input.getAttribute("list"));
    if (!list) return;
    var asked = "";
    var fetchSuggestions = debounce(function () {
      var url = suggestUrl(input);
      var q = input.value.trim();
      if (!url || q === "" || q === asked) return;
      asked = q;
      fetch(url + "?q=" + encodeURIComponent(q), {
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (choices) {
          if (!Array.isArray(choices)) return;
          list.replaceChildren.apply(list, choices.map(function (c) {
            var o = document.createElement("option");
            o.value = c.text;
            o.setAttribute("data-id", c.id);
            return o;
          }));
          choose();
        })
        .catch(function () { /* no suggestions: the form still resolves the name */ });
    }, 150);
    function choose() {
      var chosen = Array.prototype.find.call(list.options, function (o) {
        return o.value === input.value;
      });
      if (chosen) keptInput(input).value = chosen.getAttribute("data-id");
    }
    input.addEventListener("input", function () {
      choose();
      fetchSuggestions();
    });
  }

  function setUpLiveList(form) {
    var target = document.getElementById(form.getAttribute("data-live"));
    var box = form.querySelector("input[type=search]");
    if (!target || !box) return;
    var latest = 0;
    box.addEventListener("input", debounce(function () {
      var params = new URLSearchParams(new FormData(form));
      var url = form.getAttribute("action") + "?" + params.toString();
      var ticket = ++latest;
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null || ticket !== latest) return;
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(target.id);
          if (!fresh) return;
          target.replaceChildren.apply(target, Array.prototype.slice.call(fresh.childNodes));
          history.replaceState(null, "", url);
        })
        .catch(function () { /* the Apply button still works */ });
    }, 250));
  }

  var REMINDERS = [15, 5, 1];

  // Minutes left before each shutdown, and the reminder they have reached.
  function countDown() {
    document.querySelectorAll(".banner.shutdown[data-at]").forEach(function (p) {
      var left = (Date.parse(p.getAttribute("data-at")) - Date.now()) / 60000;
      if (isNaN(left)) return;
      var reached = REMINDERS.filter(function (m) { return left <= m; }).pop();
      var shown = p.querySelector(".left") || p.appendChild(document.createElement("span"));
      shown.className = "left";
      shown.textContent = " (" + Math.max(0, Math.ceil(left)) + " min)";
      if (reached !== undefined && p.getAttribute("data-reminded") !== String(reached)) {
        p.setAttribute("data-reminded", String(reached));
        p.classList.add("reminded");
        p.setAttribute("role", "alert");
      }
    });
  }

  var bannerAsServed = null;

  function refreshBanner() {
    var box = document.getElementById("announcements");
    if (!box) return;
    fetch("/banner", { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("announcements");
        if (!fresh) return;
        if (fresh.innerHTML !== bannerAsServed) {
          bannerAsServed = fresh.innerHTML;
          box.replaceChildren.apply(box, Array.prototype.slice.call(fresh.childNodes));
        }
        countDown();
      })
      .catch(function () { /* the banner stays as it was */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (document.getElementById("announcements")) {
      bannerAsServed = document.getElementById("announcements").innerHTML;
      countDown();
      setInterval(countDown, 5000);
      setInterval(refreshBanner, 30000);
    }
    document.querySelectorAll("input[list][data-suggest], input[list][data-suggest-entity-field]")
      .forEach(setUpReference);
    document.querySelectorAll("form[data-live]").forEach(setUpLiveList);
  });
})();
