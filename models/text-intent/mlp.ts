/**
 * The text-intent model itself: a hashed n-gram MLP (D → H → ReLU → classes)
 * with hand-written backprop, AdamW, dropout and a seeded RNG, so the same data
 * gives the same weights; its forward pass, and its export as an ONNX graph.
 * train.ts drives it (data, splits, sweeps, metrics, --prune).
 */
import { textFeatures } from '../../shared/handlers/text-features.js';
import { seededRandom } from '../../shared/seeded-random.js';
import { buildModel, encodeModel, node, tensor, valueInfo } from '../onnx-graph.js';
import type { Sentence } from './sentences.js';

export const GRAPH_NAME = 'text-intent-mlp';

export const config = {
  seed: 1234,
  /** Chosen by --sweep (see SELECTION). */
  hidden: 128,
  epochs: 30,
  batchSize: 32,
  learningRate: 3e-3,
  /** AdamW-style: each step shrinks weights (not biases) by learningRate × weightDecay. */
  weightDecay: 0.01,
  /** Drops non-zero input features: the model must not lean on one n-gram. */
  inputDropout: 0.2,
  hiddenDropout: 0.3,
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEpsilon: 1e-8,
};


/** A sentence as the model sees it: its label and the non-zero entries of its feature vector. */
export interface Example extends Sentence {
  label: number;
  indices: Int32Array;
  values: Float32Array;
}

export function toExample(sentence: Sentence, labelOf: Map<string, number>, D: number): Example {
  const label = labelOf.get(sentence.intent);
  if (label === undefined) throw new Error(`test sentence '${sentence.text}' has intent '${sentence.intent}', which no training sentence has`);
  const dense = textFeatures(sentence.text, D);
  const indices: number[] = [];
  for (let i = 0; i < D; i++) if (dense[i] !== 0) indices.push(i);
  return { ...sentence, label, indices: Int32Array.from(indices), values: Float32Array.from(indices, (i) => dense[i]) };
}

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

export interface Params {
  w1: Float32Array; // [D, H], row-major as ONNX MatMul's B
  b1: Float32Array; // [H]
  w2: Float32Array; // [H, C]
  b2: Float32Array; // [C]
}

/** Input width D and hidden size H of a model. */
export interface Shape {
  dim: number;
  hidden: number;
}

export const shapeOf = (p: Params): Shape => ({ dim: p.w1.length / p.b1.length, hidden: p.b1.length });

function initParams({ dim: D, hidden: H }: Shape, classes: number, random: () => number): Params {
  // Glorot/He-style scales; the input rows are L2-normalised, so a pre-activation's spread is the weights' spread.
  const w1Scale = Math.sqrt(2 / (D + H));
  const w2Scale = Math.sqrt(2 / H);
  return {
    w1: Float32Array.from({ length: D * H }, () => gaussian(random) * w1Scale),
    b1: new Float32Array(H),
    w2: Float32Array.from({ length: H * classes }, () => gaussian(random) * w2Scale),
    b2: new Float32Array(classes),
  };
}

function softmaxInPlace(values: Float32Array): void {
  let max = -Infinity;
  for (const v of values) max = Math.max(max, v);
  let sum = 0;
  for (let c = 0; c < values.length; c++) sum += values[c] = Math.exp(values[c] - max);
  for (let c = 0; c < values.length; c++) values[c] /= sum;
}

/** Inference (no dropout): logits and probabilities of one example, the computation the ONNX graph performs. */
export function predict(p: Params, x: Pick<Example, 'indices' | 'values'>): { logits: Float32Array; probabilities: Float32Array } {
  const classes = p.b2.length;
  const H = p.b1.length;
  const hidden = Float32Array.from(p.b1);
  for (let k = 0; k < x.indices.length; k++) {
    const v = x.values[k];
    const row = x.indices[k] * H;
    for (let j = 0; j < H; j++) hidden[j] += v * p.w1[row + j];
  }
  const logits = Float32Array.from(p.b2);
  for (let j = 0; j < H; j++) {
    const h = hidden[j];
    if (h <= 0) continue;
    for (let c = 0; c < classes; c++) logits[c] += h * p.w2[j * classes + c];
  }
  const probabilities = Float32Array.from(logits);
  softmaxInPlace(probabilities);
  return { logits, probabilities };
}

interface AdamState {
  m: Float32Array;
  v: Float32Array;
}

const adamState = (size: number): AdamState => ({ m: new Float32Array(size), v: new Float32Array(size) });

/** One AdamW step over param[from, to); the used gradient range is cleared for the next batch. */
function adamStep(param: Float32Array, grad: Float32Array, state: AdamState, from: number, to: number, lr: number, step: number, decay: boolean): void {
  const { adamBeta1: b1, adamBeta2: b2, adamEpsilon: eps } = config;
  const correction1 = 1 - b1 ** step;
  const correction2 = 1 - b2 ** step;
  const shrink = decay ? 1 - lr * config.weightDecay : 1;
  for (let i = from; i < to; i++) {
    const g = grad[i];
    const m = (state.m[i] = b1 * state.m[i] + (1 - b1) * g);
    const v = (state.v[i] = b2 * state.v[i] + (1 - b2) * g * g);
    param[i] = param[i] * shrink - (lr * (m / correction1)) / (Math.sqrt(v / correction2) + eps);
    grad[i] = 0;
  }
}

export interface TrainOptions {
  quiet?: boolean;
  /** Fine-tuning: start from these weights (copied) instead of a random init. */
  start?: Params;
  epochs?: number;
  learningRate?: number;
}

export function train(examples: Example[], classes: number, shape: Shape, { quiet = false, start, epochs = config.epochs, learningRate = config.learningRate }: TrainOptions = {}): Params {
  const { dim: D, hidden: H } = shape;
  const random = seededRandom(config.seed);
  const p = start ? { w1: Float32Array.from(start.w1), b1: Float32Array.from(start.b1), w2: Float32Array.from(start.w2), b2: Float32Array.from(start.b2) } : initParams(shape, classes, random);
  const grads: Params = { w1: new Float32Array(D * H), b1: new Float32Array(H), w2: new Float32Array(H * classes), b2: new Float32Array(classes) };
  const states = { w1: adamState(D * H), b1: adamState(H), w2: adamState(H * classes), b2: adamState(classes) };
  const touched = new Uint8Array(D);
  const touchedRows: number[] = [];
  const keptIndices = new Int32Array(D);
  const keptValues = new Float32Array(D);
  const pre = new Float32Array(H);
  const hidden = new Float32Array(H);
  const hiddenScale = new Float32Array(H);
  const out = new Float32Array(classes);
  const dHidden = new Float32Array(H);
  const order = examples.map((_, i) => i);
  const stepsPerEpoch = Math.ceil(examples.length / config.batchSize);
  const totalSteps = epochs * stepsPerEpoch;
  const keepInput = 1 - config.inputDropout;
  const keepHidden = 1 - config.hiddenDropout;
  let step = 0;

  for (let epoch = 1; epoch <= epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    let lossSum = 0;
    for (let start = 0; start < order.length; start += config.batchSize) {
      const batch = order.slice(start, start + config.batchSize);
      const inv = 1 / batch.length;
      for (const index of batch) {
        const x = examples[index];
        let kept = 0;
        for (let k = 0; k < x.indices.length; k++) {
          if (random() >= keepInput) continue;
          keptIndices[kept] = x.indices[k];
          keptValues[kept++] = x.values[k] / keepInput;
        }
        pre.set(p.b1);
        for (let k = 0; k < kept; k++) {
          const v = keptValues[k];
          const row = keptIndices[k] * H;
          for (let j = 0; j < H; j++) pre[j] += v * p.w1[row + j];
        }
        for (let j = 0; j < H; j++) {
          hiddenScale[j] = pre[j] > 0 && random() < keepHidden ? 1 / keepHidden : 0;
          hidden[j] = pre[j] * hiddenScale[j];
        }
        out.set(p.b2);
        for (let j = 0; j < H; j++) {
          const h = hidden[j];
          if (h === 0) continue;
          for (let c = 0; c < classes; c++) out[c] += h * p.w2[j * classes + c];
        }
        softmaxInPlace(out);
        lossSum -= Math.log(Math.max(out[x.label], 1e-12));

        // Cross-entropy through softmax: dLogits = probabilities - one-hot, averaged over the batch.
        out[x.label] -= 1;
        for (let c = 0; c < classes; c++) {
          out[c] *= inv;
          grads.b2[c] += out[c];
        }
        for (let j = 0; j < H; j++) {
          let sum = 0;
          const h = hidden[j];
          for (let c = 0; c < classes; c++) {
            const w = j * classes + c;
            if (h !== 0) grads.w2[w] += h * out[c];
            sum += p.w2[w] * out[c];
          }
          // Relu and dropout share one factor: 0 where the unit was off or dropped, 1/keep where it passed.
          dHidden[j] = sum * hiddenScale[j];
          grads.b1[j] += dHidden[j];
        }
        for (let k = 0; k < kept; k++) {
          const rowIndex = keptIndices[k];
          if (!touched[rowIndex]) {
            touched[rowIndex] = 1;
            touchedRows.push(rowIndex);
          }
          const v = keptValues[k];
          const row = rowIndex * H;
          for (let j = 0; j < H; j++) grads.w1[row + j] += v * dHidden[j];
        }
      }

      step++;
      const lr = learningRate * 0.5 * (1 + Math.cos((Math.PI * (step - 1)) / totalSteps));
      adamStep(p.b1, grads.b1, states.b1, 0, H, lr, step, false);
      adamStep(p.w2, grads.w2, states.w2, 0, H * classes, lr, step, true);
      adamStep(p.b2, grads.b2, states.b2, 0, classes, lr, step, false);
      for (const row of touchedRows) {
        adamStep(p.w1, grads.w1, states.w1, row * H, row * H + H, lr, step, true);
        touched[row] = 0;
      }
      touchedRows.length = 0;
    }
    if (!quiet && (epoch === 1 || epoch % 5 === 0)) console.log(`epoch ${epoch}/${epochs}: mean training loss ${(lossSum / examples.length).toFixed(4)}`);
  }
  return p;
}

export function argmax(values: Float32Array): number {
  let best = 0;
  for (let c = 1; c < values.length; c++) if (values[c] > values[best]) best = c;
  return best;
}

export function toOnnx(p: Params, classes: number): Uint8Array {
  const { dim: D, hidden: H } = shapeOf(p);
  return encodeModel(
    buildModel({
      name: GRAPH_NAME,
      docString: `splitinfer text-intent: FAQ intent of a zh/en/ja support-chat message from hashed n-gram features (shared/handlers/text-features.ts), ${classes} intents in labels.json`,
      metadata: { feature_dim: String(D), labels: 'labels.json' },
      inputs: [valueInfo('features', 'float32', ['batch', D])],
      outputs: [valueInfo('logits', 'float32', ['batch', classes]), valueInfo('probabilities', 'float32', ['batch', classes])],
      initializers: [tensor('fc1.weight', [D, H], p.w1), tensor('fc1.bias', [H], p.b1), tensor('fc2.weight', [H, classes], p.w2), tensor('fc2.bias', [classes], p.b2)],
      nodes: [
        node('MatMul', ['features', 'fc1.weight'], ['fc1.matmul']),
        node('Add', ['fc1.matmul', 'fc1.bias'], ['fc1.out']),
        node('Relu', ['fc1.out'], ['hidden']),
        node('MatMul', ['hidden', 'fc2.weight'], ['fc2.matmul']),
        node('Add', ['fc2.matmul', 'fc2.bias'], ['logits']),
        node('Softmax', ['logits'], ['probabilities'], { axis: { int: -1 } }),
      ],
    }),
  );
}
