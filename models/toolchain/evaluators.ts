// Importing an evaluator file registers it; eval finds the evaluator by the catalog model's handler id.
import './evaluate-audio-vad.js';
import './evaluate-image-encoder.js';
import './evaluate-image-ocr.js';
import './evaluate-text-intent.js';
