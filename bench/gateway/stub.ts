/** The upstream stub for SSE measurements: streams N chunk frames per request as fast as possible, with usage. */
import http from "node:http";

const port = Number(process.argv[2]);
const frame = (i: number) => `data: {"id":"s","object":"chat.completion.chunk","created":0,"model":"llama-3-8b","choices":[{"index":0,"delta":{"content":"t${i}"},"finish_reason":null}]}\n\n`;
http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    let i = 0;
    const tick = () => {
      if (i < 20) { res.write(frame(i++)); setTimeout(tick, 5); return; }
      res.write('data: {"id":"s","object":"chat.completion.chunk","created":0,"model":"llama-3-8b","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":20,"total_tokens":21}}\n\n');
      res.end("data: [DONE]\n\n");
    };
    tick();
  });
}).listen(port, "127.0.0.1");
