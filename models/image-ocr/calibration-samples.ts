/**
 * Calibration samples for the OCR graphs, made by the handler's own code:
 * each page goes through recogniseImage with the FP32 sessions, and every
 * feed the handler gives a session is kept: the detection input of each
 * page (ocr-det) and each batch of line crops the detector found (ocr-rec).
 * So the ranges are measured on exactly the tensors the edge will feed.
 */
import { findModel, loadCatalog, resolveSource } from '../../shared/catalog.js';
import type { HandlerContext } from '../../shared/handlers/handler.js';
import { recogniseImage } from '../../shared/handlers/image-ocr.js';
import { loadModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { runSequenceStepwise } from '../../shared/ort/sequence.js';
import type { OrtSession } from '../../shared/ort/session.js';
import { writeCalibrationSample } from '../toolchain/calibrate.js';

export interface OcrCalibrationDirs {
  'ocr-det': string;
  'ocr-rec': string;
}

/** Writes one sample per session run of the FP32 pipeline over `pages`; returns how many each graph got. */
export async function writeOcrCalibrationSamples(pages: readonly Uint8Array[], dirs: OcrCalibrationDirs): Promise<Record<keyof OcrCalibrationDirs, number>> {
  const catalogModel = findModel(loadCatalog(), 'image-ocr');
  const fp32 = await loadModel(catalogModel, 'fp32', { providers: ['cpu'], intraOpThreads: 2 }, createLogger('calibrate', 'silent'));
  const counts = { 'ocr-det': 0, 'ocr-rec': 0 };
  const recording = (graph: keyof OcrCalibrationDirs): OrtSession => {
    const session = fp32.sessions.get(graph)!;
    return {
      ...session,
      run(feeds) {
        writeCalibrationSample(dirs[graph], `${graph}-${String(counts[graph]++).padStart(4, '0')}`, feeds);
        return session.run(feeds);
      },
      runSequence(steps, plan) {
        return runSequenceStepwise((feeds) => this.run(feeds), steps, plan);
      },
    };
  };
  const ctx: HandlerContext = {
    graphs: Object.keys(counts),
    session: (graph) => recording(graph as keyof OcrCalibrationDirs),
    assetPath: (name) => resolveSource(catalogModel.assets[name]!.source),
  };
  try {
    for (const page of pages) await recogniseImage(page, ctx);
  } finally {
    await fp32.close();
  }
  return counts;
}
