/* In the chat page's <head>: with ?embed=1 (the widget's iframe) mark the page for the embedded layout
 * (ui/chat.py's CSS under .kefu-embed) and let Escape close the widget (ui/static/widget.js listens). */
(function () {
  "use strict";
  if (new URLSearchParams(window.location.search).get("embed") !== "1") return;
  document.documentElement.classList.add("kefu-embed");
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && window.parent !== window) window.parent.postMessage({ kefu: "close" }, "*");
  });
})();
