// The invitation's token arrives in the link's fragment, which the browser
// never sends to a server: move it into the form and off the address bar.
(function () {
  var token = window.location.hash.slice(1);
  if (token) {
    document.getElementById("token").value = token;
    history.replaceState(null, "", window.location.pathname);
  }
})();
