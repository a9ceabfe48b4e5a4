/* Kefu chat widget. A shop adds it to any page with
 *   <script src="https://KEFU-HOST/widget.js" data-kefu-title="Ask our shop assistant" defer></script>
 * and gets a launcher button (bottom right) that opens and closes the chat page in an iframe (/?embed=1).
 * Optional: data-kefu-token="<session token>" (the shop's back end gets it from POST /v1/tokens or
 * `kefu token CUSTOMER`) signs the shopper in. Kefu's KEFU_EMBED_ORIGINS must list the page's origin. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || document.getElementById("kefu-launcher")) return; // once per page
  var title = script.getAttribute("data-kefu-title") || "Shopping assistant";
  var token = script.getAttribute("data-kefu-token") || "";
  var chatUrl = new URL("./", script.src); // the chat page sits beside widget.js
  chatUrl.searchParams.set("embed", "1");
  if (token) chatUrl.searchParams.set("token", token);

  var style = document.createElement("style");
  style.textContent =
    "#kefu-launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:60px;height:60px;" +
    "border-radius:50%;border:0;background:#1f6feb;color:#fff;cursor:pointer;" +
    "box-shadow:0 4px 14px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center;padding:0}" +
    "#kefu-launcher:hover{background:#1a5fd0}" +
    "#kefu-launcher:focus-visible{outline:3px solid #ffb000;outline-offset:3px}" +
    "#kefu-launcher svg{width:28px;height:28px;fill:currentColor}" +
    "#kefu-panel{position:fixed;right:20px;bottom:92px;z-index:2147483000;width:380px;height:600px;" +
    "max-width:calc(100vw - 40px);max-height:calc(100vh - 112px);border-radius:12px;overflow:hidden;" +
    "box-shadow:0 8px 30px rgba(0,0,0,.3);background:#fff}" +
    "#kefu-panel[hidden]{display:none}" +
    "#kefu-frame{width:100%;height:100%;border:0;display:block}";
  document.head.appendChild(style);

  var chatIcon =
    '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 ' +
    '2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6v2h2V9H7zm4 0v2h2V9h-2zm4 0v2h2V9h-2z"/></svg>';
  var closeIcon =
    '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M6.4 5 12 10.6 17.6 5 19 6.4 13.4 ' +
    '12 19 17.6 17.6 19 12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z"/></svg>';

  var panel = document.createElement("div");
  panel.id = "kefu-panel";
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", title);
  panel.hidden = true;

  var launcher = document.createElement("button");
  launcher.id = "kefu-launcher";
  launcher.type = "button";
  launcher.title = title;
  launcher.setAttribute("aria-controls", "kefu-panel");
  launcher.setAttribute("aria-haspopup", "dialog");

  var frame = null;
  function setOpen(open) {
    if (open && !frame) { // the chat page loads on the first open only
      frame = document.createElement("iframe");
      frame.id = "kefu-frame";
      frame.title = title;
      frame.src = chatUrl.href;
      frame.setAttribute("allow", "clipboard-write");
      panel.appendChild(frame);
    }
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", open ? "true" : "false");
    launcher.setAttribute("aria-label", open ? "Close " + title : "Open " + title);
    launcher.innerHTML = open ? closeIcon : chatIcon;
    if (open) frame.focus();
  }

  launcher.addEventListener("click", function () { setOpen(panel.hidden); });
  function close() { if (!panel.hidden) { setOpen(false); launcher.focus(); } }
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") close(); });
  window.addEventListener("message", function (e) { // Escape inside the chat (ui/static/embed.js)
    if (e.origin === chatUrl.origin && e.data && e.data.kefu === "close") close();
  });
  setOpen(false);
  document.body.appendChild(panel);
  document.body.appendChild(launcher);
})();
