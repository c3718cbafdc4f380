// Shows every time of the page in the browser's time zone; its title keeps
// the time in UTC, which the page shows without this script.
(function () {
  var fmt = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var t = new Date(el.getAttribute("datetime"));
    if (!isNaN(t)) el.textContent = fmt.format(t);
  });
})();
