// The campaign form: the template list offers only templates of the chosen channel, so a
// channel and a template of another kind cannot be picked together (the server refuses it too).
(function () {
  "use strict";
  function link() {
    var channel = document.getElementById("campaign-channel");
    var template = document.getElementById("campaign-template");
    if (!channel || !template) {
      return;
    }
    function sync() {
      Array.prototype.forEach.call(template.options, function (option) {
        var kind = option.getAttribute("data-channel");
        if (!kind) {
          return;
        }
        var other = kind !== channel.value;
        option.hidden = other;
        option.disabled = other;
        if (other && option.selected) {
          template.value = "";
        }
      });
    }
    function follow() {
      var chosen = template.options[template.selectedIndex];
      var kind = chosen ? chosen.getAttribute("data-channel") : null;
      if (kind && kind !== channel.value) {
        channel.value = kind;
        sync();
      }
    }
    channel.addEventListener("change", sync);
    template.addEventListener("change", follow);
    sync();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", link);
  } else {
    link();
  }
})();
