// Preloaded into a CLI process (NODE_OPTIONS=--import ...): prints every outgoing TCP connect
// attempt on stderr as "[connect] host:port", so a test can assert which sockets were opened.
import net from 'node:net';
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  // net.connect() passes its normalized arguments as one array.
  const given = Array.isArray(args[0]) ? args[0] : args;
  const options =
    typeof given[0] === 'object' && given[0] !== null ? given[0] : { port: given[0], host: given[1] };
  if (options && options.port !== undefined)
    process.stderr.write(`[connect] ${options.host}:${options.port}\n`);
  return connect.apply(this, args);
};
