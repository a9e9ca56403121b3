// The widget manager (embed.js) typesets widget labels through MathJax 2's
// API (MathJax.Hub.Queue); the book runs MathJax 3, which has no Hub, so every
// widget label would throw "Cannot read properties of undefined (reading
// 'Queue')".  This maps that call onto MathJax 3.  Loaded before embed.js, so
// its load handler runs before embed.js draws the widgets.
window.addEventListener("load", () => {
  const mathjax = window.MathJax;
  if (!mathjax || mathjax.Hub || !mathjax.typesetPromise) {
    return;
  }
  mathjax.Hub = {
    Queue: (...jobs) => {
      for (const job of jobs) {
        if (Array.isArray(job) && job[0] === "Typeset" && job[2]) {
          mathjax.startup.promise.then(() => mathjax.typesetPromise([job[2]]));
        }
      }
    },
  };
});
