// TCP echo server for the echo workload on Node.js (libuv), `net` module only.
//   node benches/servers/echo_server.js PORT
const net = require("net");
const port = Number(process.argv[2] || 25000);
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on("data", (data) => socket.write(data));
  socket.on("error", () => socket.destroy());
});
server.listen(port, "127.0.0.1", () => console.log("ready"));
