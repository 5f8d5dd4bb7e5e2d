/** Where a task runs: on this device, or in the cloud tier. */
export type Site = 'edge' | 'cloud';
