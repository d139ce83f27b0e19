// Preloaded into a broker process (`node --import`) by bench/run.mjs: counts the Redis commands
// the broker sends and the round trips it waits for, and answers them on a loopback HTTP port
// (COUNT_REDIS_PORT): `GET /` the counts since the last `POST /`, and the round trips made by the
// time the first response since then ended. Meant for one request at a time (figures per request).
//
// Every command goes through Redis.prototype.sendCommand (a pipeline's and a script's too). A round
// trip begins when a command is sent while none is awaiting its reply, or after a reply has reached
// the broker's code since the last command was sent (the new command may depend on it). Commands
// sent one after another without any reply in between (Promise.all, a pipeline or MULTI) ride one
// round trip. Commands a Lua script runs inside Redis are not sent: an EVALSHA is one command.
import http from 'node:http';
import { Redis } from 'ioredis';

let commands = {};
let total = 0;
let roundTrips = 0;
let pending = 0;
let repliesSinceSend = 0;
/** The round trips when the first response since the reset ended (what its client waited for). */
let beforeResponse = null;

const send = Redis.prototype.sendCommand;
Redis.prototype.sendCommand = function sendCommand(command, ...rest) {
  const name = String(command.name).toLowerCase();
  if (pending === 0 || repliesSinceSend > 0) roundTrips += 1;
  repliesSinceSend = 0;
  commands[name] = (commands[name] ?? 0) + 1;
  total += 1;
  pending += 1;
  const done = () => {
    pending -= 1;
    repliesSinceSend += 1;
  };
  // Registered before the caller's own handlers, so it runs before any code the reply resumes.
  command.promise.then(done, done);
  return send.call(this, command, ...rest);
};

const end = http.ServerResponse.prototype.end;
http.ServerResponse.prototype.end = function (...args) {
  if (beforeResponse === null) beforeResponse = roundTrips;
  return end.apply(this, args);
};

const server = http.createServer((req, res) => {
  if (req.method === 'POST') {
    commands = {};
    total = 0;
    roundTrips = 0;
    beforeResponse = null;
  }
  res.setHeader('content-type', 'application/json');
  end.call(res, JSON.stringify({ commands, total, roundTrips, beforeResponse, pending }));
});
server.listen(Number(process.env.COUNT_REDIS_PORT), '127.0.0.1');
server.unref();
