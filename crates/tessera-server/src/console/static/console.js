// Tessera console: progressive enhancement only (every page works without it).
// Copy buttons: <button class="copy" data-copy="ID"> copies the value of the element #ID.
"use strict";
document.addEventListener("click", function (event) {
  var button = event.target.closest ? event.target.closest("button.copy") : null;
  if (!button) {
    return;
  }
  var field = document.getElementById(button.getAttribute("data-copy"));
  if (!field) {
    return;
  }
  field.select();
  var done = function () {
    button.textContent = "Copied";
  };
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(field.value).then(done, function () {
      document.execCommand("copy");
      done();
    });
  } else {
    document.execCommand("copy");
    done();
  }
});
