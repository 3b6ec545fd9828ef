// The draft form's uploads (空表/样表): the chosen file is sent as it is to
// POST /catalog/attachments, which publishes it as an attachment by the same rules as the
// API; its id goes into the material's hidden field, saved with the form. A refusal is
// shown beside the file, in the words of the page the node answers with.
"use strict";
(function () {
  var form = document.getElementById("draft-form");
  if (!form) { return; }
  var failed = form.getAttribute("data-upload-failed");
  form.querySelectorAll("input.upload").forEach(function (input) {
    input.addEventListener("change", function () {
      var target = input.getAttribute("data-target");
      var error = document.getElementById("uperr-" + target);
      var file = input.files && input.files[0];
      error.textContent = "";
      if (!file) { return; }
      error.textContent = form.getAttribute("data-uploading");
      fetch("/catalog/attachments?name=" + encodeURIComponent(file.name), {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "X-CSRF-Token": form.getAttribute("data-csrf"),
          "Content-Type": file.type || "application/octet-stream"
        },
        body: file
      }).then(function (response) {
        var json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
        if (response.status === 201 && json) {
          return response.json().then(function (published) {
            document.getElementById("f-" + target).value = published.id;
            var link = document.getElementById("link-" + target);
            link.href = "/catalog/attachments/" + published.id;
            link.textContent = published.name;
            link.hidden = false;
            document.getElementById("drop-" + target).hidden = false;
            error.textContent = "";
          });
        }
        return response.text().then(function (page) {
          var said = new DOMParser().parseFromString(page, "text/html").querySelector("p.message");
          error.textContent = said ? said.textContent : failed;
          input.value = "";
        });
      }).catch(function () {
        error.textContent = failed;
        input.value = "";
      });
    });
  });
})();
