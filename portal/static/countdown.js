// Counts down to the code's expiry; the page says the expiry time without it.
(function () {
  var el = document.getElementById("countdown");
  if (!el) return;
  var expires = parseInt(el.getAttribute("data-expires"), 10) * 1000;
  var inText = el.getAttribute("data-in") || "expires in", gone = el.getAttribute("data-gone") || "expired";
  function tick() {
    var left = Math.max(0, Math.round((expires - Date.now()) / 1000));
    var m = Math.floor(left / 60), s = left % 60;
    el.textContent = left > 0 ? inText + " " + m + ":" + (s < 10 ? "0" : "") + s : gone;
    if (left > 0) setTimeout(tick, 1000);
  }
  tick();
})();
