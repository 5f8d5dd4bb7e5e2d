/** Registers every placement strategy (import for its effect), as shared/handlers/index.ts does for model handlers. */
import './rules.js';
import './adaptive.js';
import './always-site.js';
import './confidence.js';
import './static-profile.js';
