/**
 * The hourly price the replay attaches to each trace VM (the trace is a private cloud:
 * it has no prices). Rule: the smallest general-purpose m5 size whose vCPUs and memory
 * both cover what the VM had provisioned. Source: AWS EC2 On-Demand pricing page,
 * us-east-1, Linux (m5 list prices). m5.large is the smallest m5, so 1-vCPU VMs are
 * priced as 2-vCPU ones (an overstatement that is the same for every policy).
 */

export interface InstancePrice {
  readonly type: string;
  readonly vcpus: number;
  readonly memoryGiB: number;
  readonly hourlyUsd: number;
}

/** m5 on-demand list prices, us-east-1, Linux (AWS EC2 On-Demand pricing page). */
export const M5_PRICES: readonly InstancePrice[] = [
  { type: 'm5.large', vcpus: 2, memoryGiB: 8, hourlyUsd: 0.096 },
  { type: 'm5.xlarge', vcpus: 4, memoryGiB: 16, hourlyUsd: 0.192 },
  { type: 'm5.2xlarge', vcpus: 8, memoryGiB: 32, hourlyUsd: 0.384 },
  { type: 'm5.4xlarge', vcpus: 16, memoryGiB: 64, hourlyUsd: 0.768 },
  { type: 'm5.8xlarge', vcpus: 32, memoryGiB: 128, hourlyUsd: 1.536 },
  { type: 'm5.12xlarge', vcpus: 48, memoryGiB: 192, hourlyUsd: 2.304 },
  { type: 'm5.16xlarge', vcpus: 64, memoryGiB: 256, hourlyUsd: 3.072 },
  { type: 'm5.24xlarge', vcpus: 96, memoryGiB: 384, hourlyUsd: 4.608 },
];

export const PRICE_SOURCE = 'AWS EC2 On-Demand pricing page, us-east-1, Linux (m5 family list prices)';

/**
 * The smallest m5 size with at least `vcpus` vCPUs and `memoryKb` of memory (KB = KiB,
 * as the trace reports it). Beyond the largest size, the largest (flagged `oversize`).
 */
export function priceFor(vcpus: number, memoryKb: number): InstancePrice & { readonly oversize: boolean } {
  const gib = memoryKb / (1024 * 1024);
  for (const p of M5_PRICES) {
    if (p.vcpus >= vcpus && p.memoryGiB >= gib) return { ...p, oversize: false };
  }
  return { ...M5_PRICES[M5_PRICES.length - 1], oversize: true };
}
