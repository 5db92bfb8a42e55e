# Resources of releases before modules/fargate-service, moved into module.node. (The
# shared log group and roles of those releases are replaced by one per node.)

moved {
  from = aws_ecs_task_definition.node["controller-1"]
  to   = module.node["controller-1"].aws_ecs_task_definition.this
}

moved {
  from = aws_ecs_service.node["controller-1"]
  to   = module.node["controller-1"].aws_ecs_service.ignore_task_definition[0]
}

moved {
  from = aws_ecs_task_definition.node["controller-2"]
  to   = module.node["controller-2"].aws_ecs_task_definition.this
}

moved {
  from = aws_ecs_service.node["controller-2"]
  to   = module.node["controller-2"].aws_ecs_service.ignore_task_definition[0]
}

moved {
  from = aws_ecs_task_definition.node["controller-3"]
  to   = module.node["controller-3"].aws_ecs_task_definition.this
}

moved {
  from = aws_ecs_service.node["controller-3"]
  to   = module.node["controller-3"].aws_ecs_service.ignore_task_definition[0]
}

moved {
  from = aws_ecs_task_definition.node["controller-4"]
  to   = module.node["controller-4"].aws_ecs_task_definition.this
}

moved {
  from = aws_ecs_service.node["controller-4"]
  to   = module.node["controller-4"].aws_ecs_service.ignore_task_definition[0]
}

moved {
  from = aws_ecs_task_definition.node["controller-5"]
  to   = module.node["controller-5"].aws_ecs_task_definition.this
}

moved {
  from = aws_ecs_service.node["controller-5"]
  to   = module.node["controller-5"].aws_ecs_service.ignore_task_definition[0]
}

moved {
  from = aws_ecs_task_definition.node["broker-1"]
  to   = module.node["broker-1"].aws_ecs_task_definition.this
}

moved {
  from = aws_ecs_service.node["broker-1"]
  to   = module.node["broker-1"].aws_ecs_service.ignore_task_definition[0]
}

moved {
  from = aws_ecs_task_definition.node["broker-2"]
  to   = module.node["broker-2"].aws_ecs_task_definition.this
}

moved {
  from = aws_ecs_service.node["broker-2"]
  to   = module.node["broker-2"].aws_ecs_service.ignore_task_definition[0]
}

moved {
  from = aws_ecs_task_definition.node["broker-3"]
  to   = module.node["broker-3"].aws_ecs_task_definition.this
}

moved {
  from = aws_ecs_service.node["broker-3"]
  to   = module.node["broker-3"].aws_ecs_service.ignore_task_definition[0]
}

moved {
  from = aws_ecs_task_definition.node["broker-4"]
  to   = module.node["broker-4"].aws_ecs_task_definition.this
}

moved {
  from = aws_ecs_service.node["broker-4"]
  to   = module.node["broker-4"].aws_ecs_service.ignore_task_definition[0]
}

moved {
  from = aws_ecs_task_definition.node["broker-5"]
  to   = module.node["broker-5"].aws_ecs_task_definition.this
}

moved {
  from = aws_ecs_service.node["broker-5"]
  to   = module.node["broker-5"].aws_ecs_service.ignore_task_definition[0]
}

moved {
  from = aws_ecs_task_definition.node["broker-6"]
  to   = module.node["broker-6"].aws_ecs_task_definition.this
}

moved {
  from = aws_ecs_service.node["broker-6"]
  to   = module.node["broker-6"].aws_ecs_service.ignore_task_definition[0]
}

moved {
  from = aws_ecs_task_definition.node["broker-7"]
  to   = module.node["broker-7"].aws_ecs_task_definition.this
}

moved {
  from = aws_ecs_service.node["broker-7"]
  to   = module.node["broker-7"].aws_ecs_service.ignore_task_definition[0]
}

moved {
  from = aws_ecs_task_definition.node["broker-8"]
  to   = module.node["broker-8"].aws_ecs_task_definition.this
}

moved {
  from = aws_ecs_service.node["broker-8"]
  to   = module.node["broker-8"].aws_ecs_service.ignore_task_definition[0]
}

moved {
  from = aws_ecs_task_definition.node["broker-9"]
  to   = module.node["broker-9"].aws_ecs_task_definition.this
}

moved {
  from = aws_ecs_service.node["broker-9"]
  to   = module.node["broker-9"].aws_ecs_service.ignore_task_definition[0]
}
