/** One printed figure of `npm run bench`: its value, unit and goal, and whether the goal is met. */
export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  goal: string;
  ok: boolean;
}
