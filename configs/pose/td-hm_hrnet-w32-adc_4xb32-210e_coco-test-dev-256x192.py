# HRNet-W32 + ADC, 256x192, on COCO test-dev2017.
# Model and recipe are those of td-hm_hrnet-w32-adc_4xb32-210e_coco-256x192.py
# (train with that one); only the test split is test-dev. Its annotations
# are not public, so testing writes the keypoint results in the evaluation
# server's format (CocoMetric(format_only=True)), to zip and upload to the
# COCO keypoint challenge server:
#   work_dirs/td-hm_hrnet-w32-adc_4xb32-210e_coco-test-dev-256x192/
#   results.keypoints.json
# Data as in mmpose: data/coco/test2017/,
# data/coco/annotations/image_info_test-dev2017.json and the person boxes
# data/coco/person_detection_results/
# COCO_test-dev2017_detections_AP_H_609_person.json.
#
#   python tools/test.py configs/pose/<this file> CKPT
_base_ = ['./td-hm_hrnet-w32-adc_4xb32-210e_coco-256x192.py']

test_dataloader = dict(
    dataset=dict(
        ann_file='annotations/image_info_test-dev2017.json',
        bbox_file='data/coco/person_detection_results/'
        'COCO_test-dev2017_detections_AP_H_609_person.json',
        data_prefix=dict(img='test2017/')))
test_evaluator = dict(
    ann_file='data/coco/annotations/image_info_test-dev2017.json',
    format_only=True,
    outfile_prefix='work_dirs/td-hm_hrnet-w32-adc_4xb32-210e'
    '_coco-test-dev-256x192/results')
