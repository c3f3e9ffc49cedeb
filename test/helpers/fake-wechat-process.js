/**
 * A fake WeChat for the tests, run as its own process (test/helpers/fake-wechat.ts forks it): a wechaty PuppetServer
 * (no TLS) serving the mock puppet, whose Mocker holds the bot account, three contacts and a room. It logs the bot
 * in on every client start, makes people speak when the parent asks, and reports every message the bot sends.
 *
 * argv: <port> <token>. IPC in: {type: 'say', from, text, room?, mention?, old?, image?}. IPC out: {type: 'ready'},
 * {type: 'client-start'}, {type: 'answer', text, to, roomId, at}.
 */
const { PuppetMock, mock } = require('wechaty-puppet-mock');
const { PuppetServer } = require('wechaty-puppet-service');
const { FileBox } = require('file-box');
const PUPPET = require('wechaty-puppet');

const [port, token] = process.argv.slice(2);
PUPPET.log.level('silent');
const send = (message) => process.send?.(message);

const mocker = new mock.Mocker();
const bot = mocker.createContact({ id: 'wxid_skadibot', name: 'SkadiBot' });
const people = {
  alice: mocker.createContact({ id: 'wxid_alice', name: 'Alice' }),
  bob: mocker.createContact({ id: 'wxid_bob', name: 'Bob' }),
  carol: mocker.createContact({ id: 'wxid_carol', name: 'Carol' }),
};
const room = mocker.createRoom({
  id: 'ops-room@chatroom',
  topic: 'ops',
  memberIdList: [bot.id, ...Object.values(people).map((c) => c.id)],
});

// What the bot says: to a contact (listener) or in the room.
bot.on('message', (message) => {
  const payload = message.payload;
  if (payload.talkerId !== bot.id) return;
  send({ type: 'answer', text: payload.text, to: payload.listenerId || null, roomId: payload.roomId || null, at: Date.now() });
});

// Runs on every client start: log the bot in, say it is ready, and beat.
mocker.use((m) => {
  m.login(bot);
  m.puppet.emit('ready', { data: 'ready' });
  send({ type: 'client-start' });
  const timer = setInterval(() => m.puppet.emit('heartbeat', { data: 'alive' }), 3000);
  return () => clearInterval(timer);
});

process.on('message', (command) => {
  if (command.type !== 'say') return;
  const from = command.from === 'bot' ? bot : people[command.from];
  if (command.old) {
    // History that WeChat replays at login: an old timestamp.
    const message = mocker.MessageMock.create({
      id: `old-${Date.now()}`,
      talkerId: from.id,
      listenerId: bot.id,
      timestamp: Date.now() - 10 * 60_000,
      type: PUPPET.types.Message.Text,
      text: command.text,
    });
    mocker.puppet.emit('message', { messageId: message.id });
    return;
  }
  const content = command.image
    ? FileBox.fromBase64(Buffer.from('89504e470d0a1a0a', 'hex').toString('base64'), 'screen.png')
    : command.text;
  if (command.room) from.say(command.mention ? `@SkadiBot ${content}` : content, command.mention ? [bot] : []).to(room);
  else from.say(content).to(from === bot ? people.alice : bot);
});

const puppet = new PuppetMock({ mocker });
const server = new PuppetServer({ endpoint: `127.0.0.1:${port}`, puppet, token, tls: { disable: true } });
server.start().then(
  () => send({ type: 'ready' }),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
