// Importing a handler file registers it; the catalog refers to handlers by id.
import './audio-vad.js';
import './image-ocr.js';
import './text-intent.js';
import './image-encoder.js';
import './video-encoder.js';
