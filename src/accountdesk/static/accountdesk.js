// What the pages' markup asks for with data- attributes. The Content-Security-Policy runs scripts from this site's
// files only: no inline <script>, no onclick= in the templates. Every page works without this file.
(function () {
  "use strict";

  // <input data-submit-on-change>: send its form as soon as it changes (a switch that saves itself).
  document.querySelectorAll("[data-submit-on-change]").forEach(function (control) {
    control.addEventListener("change", function () { control.form.submit(); });
  });

  // <a href="#id" data-opens="id">: also open the <details id="id"> it leads to.
  document.querySelectorAll("[data-opens]").forEach(function (link) {
    link.addEventListener("click", function () { document.getElementById(link.dataset.opens).open = true; });
  });

  // <div data-hidden-when="checkbox id">: hidden while that checkbox is ticked.
  document.querySelectorAll("[data-hidden-when]").forEach(function (block) {
    var box = document.getElementById(block.dataset.hiddenWhen);
    function update() { block.hidden = box.checked; }
    box.addEventListener("change", update);
    update();
  });

  // <div data-shown-when="radio button id">: shown only while that radio button is chosen.
  document.querySelectorAll("[data-shown-when]").forEach(function (block) {
    var choice = document.getElementById(block.dataset.shownWhen);
    function update() { block.hidden = !choice.checked; }
    choice.form.addEventListener("change", update);
    update();
  });

  // <div data-country="select id" data-region="select id">: the region list follows the chosen country.
  document.querySelectorAll("[data-country][data-region]").forEach(function (block) {
    var country = document.getElementById(block.dataset.country);
    var region = document.getElementById(block.dataset.region);
    country.addEventListener("change", function () {
      region.replaceChildren(new Option("—", ""));
      region.required = false;
      if (!country.value) { return; }
      fetch("/api/v1/countries/" + encodeURIComponent(country.value) + "/subdivisions")
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data || data.country !== country.value) { return; }
          data.subdivisions.forEach(function (s) { region.add(new Option(s.name, s.code)); });
          region.required = data.required;
        });
    });
  });
})();
