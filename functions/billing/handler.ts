import type { MSKEvent } from 'aws-lambda';

// Placeholder until the concern is implemented: counts the records it was given.
export const handler = async (event: MSKEvent) => {
  const records = Object.values(event.records).reduce((n, batch) => n + batch.length, 0);
  console.log(JSON.stringify({ message: 'batch received', records }));
  return { batchItemFailures: [] };
};
