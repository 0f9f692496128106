// s3proxy.js - a small HTTP proxy in front of s3rver for the S3 tests and
// bench/s3_restore.sh.  It forwards every request to the server on
// 127.0.0.1:UPSTREAM and
//   --log FILE        appends one line per answer: METHOD PATH RANGE STATUS
//                     BODY_BYTES PART ("part" for an UploadPart, else "-")
//   --slow-file FILE  while FILE exists, holds each UploadPart for 2 s (so a
//                     test can kill an uploader mid-upload)
//   --latency-ms N    delays every request by N ms, as a distant store's
//                     first-byte latency would
// It listens on a free loopback port and prints "proxy listening on PORT".
//
// Usage: node s3proxy.js UPSTREAM [--log FILE] [--slow-file FILE] [--latency-ms N]
'use strict';
const http = require('http');
const fs = require('fs');

const args = process.argv.slice(2);
const upstream = Number(args.shift());
let logFile = null, slowFile = null, latency = 0;
while (args.length) {
	const a = args.shift();
	if (a === '--log') logFile = args.shift();
	else if (a === '--slow-file') slowFile = args.shift();
	else if (a === '--latency-ms') latency = Number(args.shift());
	else { console.error(`s3proxy: unknown argument ${a}`); process.exit(2); }
}
const agent = new http.Agent({ keepAlive: true });
const server = http.createServer((req, res) => {
	const chunks = [];
	req.on('data', (c) => chunks.push(c));
	req.on('end', () => {
		const isPart = req.url.includes('partNumber=');
		const forward = () => {
			const up = http.request({ host: '127.0.0.1', port: upstream, method: req.method, path: req.url,
						  headers: req.headers, agent }, (ur) => {
				let n = 0;
				res.writeHead(ur.statusCode, ur.headers);
				ur.on('data', (c) => { n += c.length; res.write(c); });
				ur.on('end', () => {
					res.end();
					if (logFile)
						fs.appendFileSync(logFile, `${req.method} ${req.url.split('?')[0]} ` +
							`${req.headers.range || '-'} ${ur.statusCode} ${n} ${isPart ? 'part' : '-'}\n`);
				});
			});
			up.on('error', () => { res.writeHead(502); res.end(); });
			up.end(Buffer.concat(chunks));
		};
		let delay = latency;
		if (req.method === 'PUT' && isPart && slowFile && fs.existsSync(slowFile))
			delay += 2000;
		if (delay > 0) setTimeout(forward, delay); else forward();
	});
});
server.listen(0, '127.0.0.1', () => console.log(`proxy listening on ${server.address().port}`));
