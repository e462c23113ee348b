// Drives `smtpcli serve --http` with the npm package mailpit-api, unchanged, the way an
// application's test suite would. Usage: node mailpit_api_client.mjs BASE_URL TAG
// Prints one JSON document of what the client saw; tests/test_serve_http_js.py judges it.
import { MailpitClient } from "mailpit-api";

const [base, tag] = process.argv.slice(2);
const mailpit = new MailpitClient(base);
const out = {};
const brief = (m) => ({ ID: m.ID, Subject: m.Subject, From: m.From.Address, To: m.To.map((a) => a.Address), Read: m.Read, Attachments: m.Attachments });

out.info = await mailpit.getInfo();
const listed = await mailpit.listMessages(0, 50);
out.list = { total: listed.total, unread: listed.unread, messages_count: listed.messages_count, messages: listed.messages.map(brief) };

const fromSwaks = await mailpit.searchMessages({ query: `subject:${tag} from:swaks@` });
out.searchSwaks = fromSwaks.messages.map(brief);
const fromSend = await mailpit.searchMessages({ query: `subject:"${tag} from smtpcli" is:unread` });
out.searchSend = fromSend.messages.map(brief);

const id = fromSend.messages[0].ID;
const message = await mailpit.getMessageSummary(id);
out.message = { Subject: message.Subject, Text: message.Text, HTML: message.HTML, Attachments: message.Attachments, From: message.From, To: message.To };
const part = message.Attachments[0];
const blob = await mailpit.getMessageAttachment(id, part.PartID);
out.attachment = { size: blob.size, type: blob.type, text: await blob.text() };
out.headers = await mailpit.getMessageHeaders(id);
out.raw = await mailpit.getMessageSource(id);
out.rendered = await mailpit.renderMessageHTML(id);
out.latestText = await mailpit.renderMessageText("latest");

out.setRead = await mailpit.setReadStatus({ IDs: [fromSwaks.messages[0].ID], Read: true });
out.unreadAfter = (await mailpit.searchMessages({ query: `subject:${tag} is:unread` })).messages_count;
out.waited = (await mailpit.waitForMessage({ query: `subject:${tag}` }, { timeout: 3000, interval: 100 })).Subject;
out.chaos = await mailpit.getChaosTriggers();

out.deleteOne = await mailpit.deleteMessages({ IDs: [id] });
out.afterDeleteOne = (await mailpit.searchMessages({ query: tag })).messages_count;
out.deleteSearch = await mailpit.deleteMessagesBySearch({ query: `from:swaks@` });
out.afterDeleteSearch = (await mailpit.searchMessages({ query: tag })).messages_count;
out.deleteAll = await mailpit.deleteMessages();
out.afterDeleteAll = (await mailpit.listMessages()).total;
try {
  await mailpit.getMessageSummary(id);
  out.deletedLookup = "found";
} catch (error) {
  out.deletedLookup = String(error.message);
}
console.log(JSON.stringify(out));
