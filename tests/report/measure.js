// Added to the report page by browser_test.sh only (the page itself has no script): measures
// each chart as the browser laid it out and writes what it found into the DOM, one line a
// chart, for the test to read from --dump-dom.
(function () {
  var lines = [];
  document.querySelectorAll('svg.chart').forEach(function (svg) {
    var box = svg.getBoundingClientRect();
    var marks = svg.querySelectorAll('.pt');
    var drawn = 0;
    marks.forEach(function (mark) {
      var b = mark.getBBox();
      var r = mark.getBoundingClientRect();
      var inside = r.left >= box.left - 1 && r.right <= box.right + 1 &&
                   r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
      if (b.width > 0 && b.height > 0 && inside) drawn++;
    });
    var title = svg.querySelector('text.chart-title');
    var ticks = svg.querySelectorAll('text.tick').length;
    lines.push(['chart', svg.id,
                'declared=' + svg.getAttribute('data-points'),
                'marks=' + marks.length,
                'drawn=' + drawn,
                'width=' + Math.round(box.width),
                'height=' + Math.round(box.height),
                'title=' + (title ? Math.round(title.getComputedTextLength()) : 0),
                'ticks=' + ticks].join(' '));
  });
  var out = document.createElement('pre');
  out.id = 'measured';
  out.textContent = lines.join('\n') + '\nend\n';
  document.body.appendChild(out);
})();
