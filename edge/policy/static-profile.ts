/**
 * The `static-profile` baseline, after Neurosurgeon-style partitioning: each
 * modality's default task is placed once, from an offline profile (edge time, cloud time,
 * payload bytes) at a nominal link (`policy.staticProfile`), and stays there
 * whatever the link or the load do later. A task without a profile (the
 * image `encode` task among them) goes where config places it; a task the
 * reference variant held on the device would run (its floor rules the light
 * one out) has no profile either, and goes to the cloud.
 */
import type { ModalityProfile } from '../config.js';
import type { Site } from '../request.js';
import type { Task } from '../tasks.js';
import { reason } from './reasons.js';
import { registerPlacementStrategy, type PlacementStrategy, type StrategyChoice } from './strategy.js';

export const staticProfileStrategyName = 'static-profile';

/** The side a profile picks at a nominal link: the cloud when its RTT + upload + compute beats the edge's compute. */
export function profiledSite(profile: ModalityProfile, uplinkMbps: number, rttMs: number): { site: Site; uploadMs: number; cloudMs: number } {
  const uploadMs = (profile.payloadBytes * 8) / (uplinkMbps * 1000);
  const cloudMs = rttMs + uploadMs + profile.cloudMs;
  return { site: cloudMs < profile.edgeMs ? 'cloud' : 'edge', uploadMs, cloudMs };
}

registerPlacementStrategy(staticProfileStrategyName, (config): PlacementStrategy => {
  const { uplinkMbps, rttMs, modalities } = config.policy.staticProfile;
  // By task settings path: the profiles are of each modality's default task, so `image.encode` has none.
  const decided = new Map<string, StrategyChoice>();

  const decideOnce = (task: Task): StrategyChoice => {
    const modality = task.modality;
    const profile = task.settingsPath === modality ? modalities[modality] : undefined;
    if (!profile) {
      const site = task.settings.placement;
      return { site, reasons: [reason.profiled(`static-profile has no offline profile for ${task.settingsPath}, so it runs where config places it (${site})`)], estimates: {} };
    }
    const { site, uploadMs, cloudMs } = profiledSite(profile, uplinkMbps, rttMs);
    const comparison = `cloud ${Math.round(cloudMs)} ms (rtt ${rttMs} + upload ${Math.round(uploadMs)} + compute ${profile.cloudMs}) vs edge ${profile.edgeMs} ms`;
    return {
      site,
      reasons: [reason.profiled(`static-profile placed ${modality} once from its offline profile at ${uplinkMbps} Mbit/s: ${comparison}`)],
      estimates: { profile: { ...profile }, nominalUplinkMbps: uplinkMbps, nominalRttMs: rttMs, cloudMs, edgeMs: profile.edgeMs },
    };
  };

  return {
    name: staticProfileStrategyName,
    choose(task, { edgeReference, localVariant }): StrategyChoice {
      if (edgeReference) {
        return { site: 'cloud', reasons: [reason.profiled(`static-profile has no offline profile of ${task.settingsPath} on the edge's ${localVariant} variant, so it runs in the cloud`)], estimates: {} };
      }
      let placed = decided.get(task.settingsPath);
      if (!placed) decided.set(task.settingsPath, (placed = decideOnce(task)));
      return { ...placed, reasons: [...placed.reasons], estimates: { ...placed.estimates } };
    },
  };
});
