/**
 * `work`'s value, or undefined once `ms` have passed, whichever comes first.
 * The work goes on either way (nothing here can stop it); a rejection that
 * comes first rejects. The timer is cleared as soon as either settles, so a
 * long limit never holds the process open.
 */
export async function within<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, ms));
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}
