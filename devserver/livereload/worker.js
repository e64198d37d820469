// devserver live reload: the one event stream of a browser, shared by all the tabs of the site.
"use strict";
var ports = [];
var source = null;
var hello = null; // the last greeting, for tabs that connect later (null while reconnecting)
var retry = null;

function send(event) {
  ports.forEach(function (port) {
    port.postMessage(event);
  });
}

function open() {
  retry = null;
  source = new EventSource("events");
  source.onmessage = function (message) {
    var event = JSON.parse(message.data);
    if (event.type === "hello") hello = event;
    send(event);
  };
  source.onerror = function () {
    hello = null;
    if (source.readyState === EventSource.CLOSED) {
      // Not a stream any more (the supervisor's error page answered): the tabs show that page.
      source = null;
      send({ type: "down" });
      if (ports.length) retry = setTimeout(open, 1000);
    }
  };
}

onconnect = function (connection) {
  var port = connection.ports[0];
  ports.push(port);
  port.onmessage = function (message) {
    if (message.data === "bye") {
      ports = ports.filter(function (p) {
        return p !== port;
      });
    } else if (message.data === "ask" && hello) {
      port.postMessage(hello);
    }
  };
  port.start();
  if (hello) port.postMessage(hello);
  if (!source && !retry) open();
};
