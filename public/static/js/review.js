// "Select all" / "Select none" for the review lists; the page works the same without it.
document.querySelectorAll(".bulk[data-target]").forEach(function (bar) {
  var table = document.getElementById(bar.getAttribute("data-target"));
  if (!table) { return; }
  bar.hidden = false;
  bar.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-check]");
    if (!button) { return; }
    var on = button.getAttribute("data-check") === "all";
    table.querySelectorAll("input[type=checkbox][name=item]").forEach(function (box) { box.checked = on; });
  });
});
