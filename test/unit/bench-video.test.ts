/**
 * bench:video's core on a tiny clip: the real agent child, cloud tier and
 * link emulator, the way `npm run bench:video -- --quick` runs them, only
 * shorter. Checks the rows' shape and that the numbers hang together, not
 * how fast this machine is.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { constantTrace } from '../helpers/bandwidth-trace.js';
import { openLog } from '../bench/processes.js';
import { benchClip, loopedClip } from '../bench/video-inputs.js';
import { judge, videoMarkdown } from '../bench/video-report.js';
import { defaultFilterThreshold, runVideoBenchmark, traceLink, unlimitedLink } from '../bench/video-run.js';

test('bench:video runs a clip on each side and through adaptive placement, and reports sane numbers for every target', { timeout: 120_000 }, async () => {
  const clip = await benchClip('fixed-camera', { width: 320, height: 240 }, 8);
  const stream = await loopedClip(clip, 2);
  const link = traceLink(constantTrace(8));
  const output = await runVideoBenchmark({
    clips: [clip],
    setups: [
      { placement: 'always-local', filterThreshold: defaultFilterThreshold, links: [unlimitedLink] },
      { placement: 'always-local', filterThreshold: 0, links: [unlimitedLink] },
      { placement: 'always-cloud', filterThreshold: 0, links: [unlimitedLink] },
      { placement: 'adaptive', filterThreshold: defaultFilterThreshold, links: [link] },
    ],
    rssStream: stream,
    cores: { unpinnedReason: 'a unit test does not pin' },
    log: openLog(`video-test-${process.pid}`),
    progress: () => {},
  });
  assert.equal(output.rows.length, 4);
  for (const row of output.rows) {
    assert.equal(row.error, null, `${row.placement}: ${row.error}`);
    assert.equal(row.framesDecoded, 32, '8 s at 4 sampled frames/s');
    assert.equal(row.chunks, 2, '16 frames per chunk');
    assert.equal(row.chunksFailed, 0);
    assert.ok(row.framesKept >= row.chunks && row.framesKept <= row.framesDecoded);
    assert.ok(row.rtf > 0 && row.wallSeconds > 0);
    assert.ok(row.chunkP50Ms! >= 0 && row.chunkP95Ms! >= row.chunkP50Ms!);
    assert.ok(row.orchestrationMsPerChunk > 0 && row.orchestrationMsPerChunk < 1000);
    assert.ok(row.peakRssMb > 50 && row.peakRssMb < 4000);
    assert.ok(row.allFramesJpegBytes > 0);
  }
  const [local, unfilteredLocal, unfilteredCloud, adaptive] = output.rows;
  assert.deepEqual([local!.uplinkBytes, local!.placed.edge], [0, 2]);
  assert.equal(unfilteredLocal!.framesKept, 32);
  assert.equal(unfilteredLocal!.labelAgreement, null, 'a reference is not compared with itself');
  assert.ok(local!.labelAgreement! >= 0 && local!.labelAgreement! <= 1);
  assert.equal(unfilteredCloud!.placed.cloud, 2);
  assert.equal(unfilteredCloud!.uplinkBytes, unfilteredCloud!.allFramesJpegBytes, 'every frame sent is every frame as a JPEG at the default shaping');
  assert.ok(unfilteredCloud!.linkUplinkBytes >= unfilteredCloud!.uplinkBytes, 'the link carries the JPEGs and the framing');
  assert.equal(adaptive!.link, 'constant-8Mbps');
  assert.equal(adaptive!.placed.edge + adaptive!.placed.cloud, 2);
  assert.equal(output.rssStream!.framesDecoded, 64);
  assert.ok(output.rssStream!.rssSamplesMb.length >= 2);

  const { targets, realTime } = judge(output, 10);
  assert.equal(targets.length, 4);
  assert.deepEqual(realTime, [], 'the real-time target is judged on 720p clips only');
  assert.deepEqual(targets.map((t) => typeof t.met), ['boolean', 'boolean', 'boolean', 'object']);
  const markdown = videoMarkdown({ generatedAt: 'now', runSeconds: 1, setup: { mode: 'test', cpus: 2, node: process.version }, targets, realTime, clips: output.rows, rssStream: output.rssStream, notes: [] });
  assert.match(markdown, /## Targets \(issue 11\)/);
  assert.equal(markdown.split('\n').filter((line) => line.startsWith(`| ${clip.name}`)).length, 5, 'one table row per run and the stream');
});
