// @platformatic/kafka calls Promise.withResolvers (Node 22+); Node 20 lacks it. Import this module before
// using the client. Bundled with the producer too: Lambda's nodejs22.x never needs it, but
// `serverless invoke local` runs the bundle on the local Node.
if (typeof (Promise as { withResolvers?: unknown }).withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T>() {
      let resolve!: (value: T | PromiseLike<T>) => void;
      let reject!: (reason?: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

export {};
