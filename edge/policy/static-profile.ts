/**
 * The `static-profile` baseline, after Neurosurgeon-style partitioning: each
 * modality is placed once, from an offline profile (edge time, cloud time,
 * payload bytes) at a nominal link (`policy.staticProfile`), and stays there
 * whatever the link or the load do later. A modality without a profile goes
 * where config places it.
 */
import type { Modality } from '../request.js';
import { reason } from './reasons.js';
import { registerPlacementStrategy, type PlacementStrategy, type StrategyChoice } from './strategy.js';

export const staticProfileStrategyName = 'static-profile';

registerPlacementStrategy(staticProfileStrategyName, (config): PlacementStrategy => {
  const { uplinkMbps, rttMs, modalities } = config.policy.staticProfile;
  const decided = new Map<Modality, StrategyChoice>();

  const decideOnce = (modality: Modality): StrategyChoice => {
    const profile = modalities[modality];
    if (!profile) {
      const site = config.modalities[modality].placement;
      return { site, reasons: [reason.profiled(`static-profile has no offline profile for ${modality}, so it runs where config places it (${site})`)], estimates: {} };
    }
    const uploadMs = (profile.payloadBytes * 8) / (uplinkMbps * 1000);
    const cloudMs = rttMs + uploadMs + profile.cloudMs;
    const site = cloudMs < profile.edgeMs ? 'cloud' : 'edge';
    const comparison = `cloud ${Math.round(cloudMs)} ms (rtt ${rttMs} + upload ${Math.round(uploadMs)} + compute ${profile.cloudMs}) vs edge ${profile.edgeMs} ms`;
    return {
      site,
      reasons: [reason.profiled(`static-profile placed ${modality} once from its offline profile at ${uplinkMbps} Mbit/s: ${comparison}`)],
      estimates: { profile: { ...profile }, nominalUplinkMbps: uplinkMbps, nominalRttMs: rttMs, cloudMs, edgeMs: profile.edgeMs },
    };
  };

  return {
    name: staticProfileStrategyName,
    choose(task): StrategyChoice {
      let placed = decided.get(task.modality);
      if (!placed) decided.set(task.modality, (placed = decideOnce(task.modality)));
      return { ...placed, reasons: [...placed.reasons], estimates: { ...placed.estimates } };
    },
  };
});
