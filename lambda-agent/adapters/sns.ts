/**
 * SNS adapter of the watchdog: publishes contract events with the message attributes
 * subscription filter policies match on (all `String`: a Binary attribute is lost on
 * raw SQS delivery) and the event's subject as the email Subject.
 */
import { PublishCommand } from '@aws-sdk/client-sns';
import { messageAttributes, type SmvmEvent } from '../contract/event-core';
import type { AwsClient } from './ec2';

/** SNS refuses subjects over 100 characters, with line breaks or outside printable ASCII. */
export const SNS_SUBJECT_MAX = 100;

/** An SNS-safe subject: printable ASCII only, one line, at most 100 characters. */
export function snsSubject(subject: string): string {
  const ascii = subject
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[\r\n\t]+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .replace(/ {2,}/g, ' ')
    .trim();
  const text = ascii === '' ? 'smvm event' : ascii;
  return text.length <= SNS_SUBJECT_MAX ? text : `${text.slice(0, SNS_SUBJECT_MAX - 3)}...`;
}

/** The Publish input of an event (exported for tests and the bench's size checks). */
export function publishInput(topicArn: string, event: SmvmEvent) {
  const attrs = messageAttributes(event);
  return {
    TopicArn: topicArn,
    Message: JSON.stringify(event),
    Subject: snsSubject(event.subject),
    MessageAttributes: Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, { DataType: 'String', StringValue: v }])),
  };
}

export async function publishEvent(sns: AwsClient, topicArn: string, event: SmvmEvent): Promise<void> {
  await sns.send(new PublishCommand(publishInput(topicArn, event)));
}
